SELECT query, COUNT(*) AS n, COUNT(DISTINCT user_id) AS users
FROM stream_log WHERE dt BETWEEN '2019-10-01' AND '2019-10-07' AND query LIKE '%날%'
GROUP BY query ORDER BY n DESC, query LIMIT 20
