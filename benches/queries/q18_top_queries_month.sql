SELECT query, COUNT(*) AS clicks FROM stream_log
WHERE event = 'click'
GROUP BY query ORDER BY clicks DESC, query LIMIT 10
