SELECT rank, COUNT(*) AS clicks FROM stream_log
WHERE dt IN ('2019-10-20', '2019-10-21') AND event = 'click'
GROUP BY rank ORDER BY rank
