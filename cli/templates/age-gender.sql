-- name: age-gender
-- description: clicks by age band and gender (joins the profile table on the bucket key)
-- param table: table = korea_naver_log.stream_log
-- param profile: table = korea_naver_log.user_profile
-- param from: date
-- param to: date
-- param filter: expr = TRUE
SELECT CAST(FLOOR((CAST(SUBSTR(${from}, 1, 4) AS INT) - p.birth_year) / 10.0) * 10 AS INT) AS age_band,
       p.gender,
       COUNT(*) AS clicks
FROM ${table} l JOIN ${profile} p ON l.user_id = p.user_id
WHERE l.dt BETWEEN ${from} AND ${to} AND l.event = 'click' AND (${filter})
GROUP BY 1, 2
ORDER BY 1, 2
