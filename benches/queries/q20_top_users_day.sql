SELECT t.user_id, t.n, p.region FROM (
  SELECT user_id, COUNT(*) AS n FROM stream_log WHERE dt = '2019-10-25' GROUP BY user_id
) t JOIN user_profile p ON t.user_id = p.user_id
ORDER BY t.n DESC, t.user_id LIMIT 10
