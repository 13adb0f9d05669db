-- Parcels whose moisture fell most between two dates (largest drop of mv_pct first).
--
-- Parameters:
--   $date_from  first date, ISO (2024-04-01); UTC
--   $date_to    second date, ISO (2024-05-01); UTC
--   $limit      how many parcels to return at most
--
-- Choice: for each date and each parcel, the parcel's latest 'ok' estimate acquired on or before the end of that
-- UTC day (an acquisition on the date itself counts), so a parcel masked on one acquisition falls back to its
-- previous valid value; the acquisition times used are returned so stale values can be seen. Only parcels with
-- a valid value at both dates, from two different acquisitions, whose moisture fell (change_pct < 0) are
-- listed, by change_pct ascending, then parcel_id. Nothing is returned when $date_to is not after $date_from.
WITH ok AS (
    SELECT m.parcel_id, a.datetime_utc, m.acquisition_id, m.mv_pct
    FROM moisture AS m
    JOIN acquisitions AS a ON a.acquisition_id = m.acquisition_id
    WHERE m.status = 'ok' AND m.mv_pct IS NOT NULL
),
at_from AS (
    SELECT * FROM ok
    WHERE datetime_utc < CAST($date_from AS DATE) + INTERVAL 1 DAY
    QUALIFY row_number() OVER (PARTITION BY parcel_id ORDER BY datetime_utc DESC, acquisition_id DESC) = 1
),
at_to AS (
    SELECT * FROM ok
    WHERE datetime_utc < CAST($date_to AS DATE) + INTERVAL 1 DAY
    QUALIFY row_number() OVER (PARTITION BY parcel_id ORDER BY datetime_utc DESC, acquisition_id DESC) = 1
)
SELECT
    f.parcel_id,
    f.datetime_utc AS datetime_from_utc,
    f.mv_pct AS mv_from_pct,
    t.datetime_utc AS datetime_to_utc,
    t.mv_pct AS mv_to_pct,
    t.mv_pct - f.mv_pct AS change_pct
FROM at_from AS f
JOIN at_to AS t ON t.parcel_id = f.parcel_id
WHERE CAST($date_to AS DATE) > CAST($date_from AS DATE)
  AND t.acquisition_id <> f.acquisition_id
  AND t.mv_pct < f.mv_pct
ORDER BY change_pct, f.parcel_id
LIMIT CAST($limit AS INTEGER)
