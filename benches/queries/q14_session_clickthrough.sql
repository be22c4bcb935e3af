SELECT section, COUNT(*) AS clicks_after_impression FROM (
  SELECT section, event,
         LAG(event) OVER (PARTITION BY session_id ORDER BY log_time, doc_id, rank, event) AS prev
  FROM stream_log WHERE dt = '2019-10-21'
) s WHERE event = 'click' AND prev = 'impression'
GROUP BY section ORDER BY section
