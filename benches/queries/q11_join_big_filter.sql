SELECT p.region, p.gender, COUNT(*) AS clicks
FROM stream_log l JOIN user_profile p ON l.user_id = p.user_id
WHERE l.dt BETWEEN '2019-10-01' AND '2019-10-14' AND l.query = '날씨' AND l.event = 'click'
GROUP BY p.region, p.gender ORDER BY p.region, p.gender
