SELECT COUNT(*) AS returning_users, SUM(b.c) AS later_events FROM
  (SELECT user_id, COUNT(*) AS c FROM stream_log WHERE dt BETWEEN '2019-10-01' AND '2019-10-15' GROUP BY user_id) a
  JOIN (SELECT user_id, COUNT(*) AS c FROM stream_log WHERE dt BETWEEN '2019-10-16' AND '2019-10-30' GROUP BY user_id) b
  ON a.user_id = b.user_id
