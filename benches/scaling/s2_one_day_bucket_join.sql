SELECT p.region, COUNT(DISTINCT l.session_id) AS sessions
FROM stream_log l JOIN user_profile p ON l.user_id = p.user_id
WHERE l.dt = '2019-10-30' GROUP BY p.region ORDER BY 1
