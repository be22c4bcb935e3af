SELECT l.section, COUNT(*) AS clicks, COUNT(DISTINCT l.user_id) AS users
FROM stream_log l JOIN user_profile p ON l.user_id = p.user_id
WHERE l.dt = '2019-10-12' AND p.region = '제주' AND p.gender = 'F' AND l.event = 'click'
GROUP BY l.section ORDER BY l.section
