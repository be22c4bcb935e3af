SELECT COUNT(*) AS kept, COUNT(DISTINCT user_id) AS users, SUM(n) AS events FROM (
  SELECT user_id, query, n, ROW_NUMBER() OVER (PARTITION BY user_id ORDER BY n DESC, query) AS rn
  FROM (SELECT user_id, query, COUNT(*) AS n FROM stream_log WHERE dt = '2019-10-20' GROUP BY user_id, query) c
) r WHERE rn <= 3
