SELECT CAST(FLOOR((2019 - p.birth_year) / 10.0) * 10 AS INT) AS age_band, p.gender, COUNT(*) AS clicks
FROM stream_log l JOIN user_profile p ON l.user_id = p.user_id
WHERE l.dt BETWEEN '2019-10-01' AND '2019-10-07' AND l.event = 'click'
GROUP BY 1, 2 ORDER BY 1, 2
