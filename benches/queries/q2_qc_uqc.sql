SELECT dt, COUNT(*) AS qc, COUNT(DISTINCT user_id || '|' || query) AS uqc
FROM stream_log WHERE event = 'impression' AND rank = 1
GROUP BY dt ORDER BY dt
