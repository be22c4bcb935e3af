SELECT dt, section,
       SUM(CASE WHEN event = 'impression' THEN 1 ELSE 0 END) AS imps,
       SUM(CASE WHEN event = 'click' THEN 1 ELSE 0 END) AS clicks,
       CAST(SUM(CASE WHEN event = 'click' THEN 1 ELSE 0 END) AS DOUBLE)
         / SUM(CASE WHEN event = 'impression' THEN 1 ELSE 0 END) AS ctr
FROM stream_log WHERE dt BETWEEN '2019-10-08' AND '2019-10-14'
GROUP BY dt, section ORDER BY dt, section
