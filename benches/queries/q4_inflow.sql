SELECT CASE WHEN referrer = '' THEN 'direct'
            WHEN referrer LIKE '%naver.com%' THEN 'naver'
            WHEN referrer LIKE '%google.%' THEN 'google'
            WHEN referrer LIKE '%daum.net%' THEN 'daum'
            WHEN referrer LIKE '%facebook.com%' OR referrer LIKE '%t.co/%' OR referrer LIKE '%youtube.com%' THEN 'social'
            ELSE 'other' END AS channel,
       COUNT(*) AS n
FROM stream_log WHERE dt = '2019-10-15' GROUP BY 1 ORDER BY 1
