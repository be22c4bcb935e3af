SELECT EXTRACT(HOUR FROM log_time) AS hour, COUNT(*) AS clicks
FROM stream_log WHERE event = 'click'
GROUP BY 1 ORDER BY 1
