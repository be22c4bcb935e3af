SELECT log_time, query, section, event, doc_id FROM stream_log
WHERE user_id = '{user}'
ORDER BY log_time, doc_id
