-- name: inflow
-- description: where users came from (referrer channel) per day
-- param table: table = korea_naver_log.stream_log
-- param from: date
-- param to: date
-- param filter: expr = TRUE
SELECT dt,
       CASE WHEN referrer = '' OR referrer IS NULL THEN 'direct'
            WHEN referrer LIKE '%naver.com%' THEN 'naver'
            WHEN referrer LIKE '%google.%' THEN 'google'
            WHEN referrer LIKE '%daum.net%' THEN 'daum'
            WHEN referrer LIKE '%facebook.com%' OR referrer LIKE '%t.co/%' OR referrer LIKE '%youtube.com%' THEN 'social'
            ELSE 'other' END AS channel,
       COUNT(*) AS n
FROM ${table}
WHERE dt BETWEEN ${from} AND ${to} AND (${filter})
GROUP BY 1, 2
ORDER BY 1, 2
