SELECT log_time, query, section, event, doc_id FROM stream_log
WHERE user_id = '{user}' AND dt BETWEEN '2019-10-01' AND '2019-10-30'
ORDER BY log_time, doc_id
