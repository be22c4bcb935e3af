SELECT doc_id, COUNT(*) AS imps FROM stream_log
WHERE query = '날씨' AND event = 'impression' AND dt BETWEEN '2019-10-01' AND '2019-10-15'
GROUP BY doc_id ORDER BY imps DESC, doc_id LIMIT 20
