SELECT section, COUNT(*) AS n, COUNT(DISTINCT user_id) AS users
FROM stream_log GROUP BY section ORDER BY section
