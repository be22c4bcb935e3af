-- name: ctr
-- description: impressions, clicks and click-through rate per day and section
-- param table: table = korea_naver_log.stream_log
-- param from: date
-- param to: date
-- param filter: expr = TRUE
-- param by: column = section
SELECT dt, ${by},
       SUM(CASE WHEN event = 'impression' THEN 1 ELSE 0 END) AS imps,
       SUM(CASE WHEN event = 'click' THEN 1 ELSE 0 END) AS clicks,
       ROUND(CAST(SUM(CASE WHEN event = 'click' THEN 1 ELSE 0 END) AS DOUBLE)
         / NULLIF(SUM(CASE WHEN event = 'impression' THEN 1 ELSE 0 END), 0), 4) AS ctr
FROM ${table}
WHERE dt BETWEEN ${from} AND ${to} AND (${filter})
GROUP BY dt, ${by}
ORDER BY dt, ${by}
