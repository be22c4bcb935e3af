-- name: qc-uqc
-- description: query count (QC) and unique query count per user (UQC) per day
-- param table: table = korea_naver_log.stream_log
-- param from: date
-- param to: date
-- param filter: expr = TRUE
SELECT dt, COUNT(*) AS qc, COUNT(DISTINCT user_id || '|' || query) AS uqc
FROM ${table}
WHERE event = 'impression' AND rank = 1 AND dt BETWEEN ${from} AND ${to} AND (${filter})
GROUP BY dt
ORDER BY dt
