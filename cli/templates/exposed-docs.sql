-- name: exposed-docs
-- description: the documents shown most often for a query
-- param table: table = korea_naver_log.stream_log
-- param from: date
-- param to: date
-- param filter: expr = TRUE
-- param query: string = 날씨
-- param limit: int = 20
SELECT doc_id, COUNT(*) AS imps
FROM ${table}
WHERE query = ${query} AND event = 'impression' AND dt BETWEEN ${from} AND ${to} AND (${filter})
GROUP BY doc_id
ORDER BY imps DESC, doc_id
LIMIT ${limit}
