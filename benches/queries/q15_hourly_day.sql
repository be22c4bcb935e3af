SELECT EXTRACT(HOUR FROM log_time) AS hour, COUNT(*) AS n,
       SUM(CASE WHEN event = 'click' THEN 1 ELSE 0 END) AS clicks
FROM stream_log WHERE dt = '2019-10-10'
GROUP BY 1 ORDER BY 1
