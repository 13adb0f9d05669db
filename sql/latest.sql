-- Latest moisture of every parcel: its most recent acquisition with that acquisition's status, plus its last valid value.
--
-- Parameters: none.
--
-- Choice: the latest row is the parcel's most recent acquisition whatever its status, so a parcel masked on the
-- last date shows that flag (mv_pct NULL) rather than an older value presented as current. The most recent
-- 'ok' estimate is given beside it (last_ok_mv_pct, its posterior standard deviation last_ok_mv_std_pct, its
-- credible intervals last_ok_mv_lo68_pct … last_ok_mv_hi95_pct, last_ok_datetime_utc; NULL if the parcel never
-- had one). mv_std_pct, the credible intervals mv_lo68_pct/mv_hi68_pct (15.87 % and 84.13 % posterior
-- quantiles) and mv_lo95_pct/mv_hi95_pct (2.5 % and 97.5 %), all vol.% and NULL for rows stored before schema 5,
-- and method ('single' or 'temporal') are those of the latest row.
-- One row per parcel that has moisture, ordered by parcel_id. Ties in time are broken by acquisition_id.
WITH ranked AS (
    SELECT
        m.parcel_id,
        a.datetime_utc,
        m.acquisition_id,
        m.mv_pct,
        m.mv_std_pct,
        m.mv_lo68_pct,
        m.mv_hi68_pct,
        m.mv_lo95_pct,
        m.mv_hi95_pct,
        m.method,
        m.status,
        m.network
    FROM moisture AS m
    JOIN acquisitions AS a ON a.acquisition_id = m.acquisition_id
),
latest AS (
    SELECT * FROM ranked
    QUALIFY row_number() OVER (PARTITION BY parcel_id ORDER BY datetime_utc DESC, acquisition_id DESC) = 1
),
last_ok AS (
    SELECT parcel_id, datetime_utc, mv_pct, mv_std_pct, mv_lo68_pct, mv_hi68_pct, mv_lo95_pct, mv_hi95_pct
    FROM ranked
    WHERE status = 'ok'
    QUALIFY row_number() OVER (PARTITION BY parcel_id ORDER BY datetime_utc DESC, acquisition_id DESC) = 1
)
SELECT
    l.parcel_id,
    l.datetime_utc,
    l.acquisition_id,
    l.mv_pct,
    l.mv_std_pct,
    l.mv_lo68_pct,
    l.mv_hi68_pct,
    l.mv_lo95_pct,
    l.mv_hi95_pct,
    l.method,
    l.status,
    l.network,
    k.mv_pct AS last_ok_mv_pct,
    k.mv_std_pct AS last_ok_mv_std_pct,
    k.mv_lo68_pct AS last_ok_mv_lo68_pct,
    k.mv_hi68_pct AS last_ok_mv_hi68_pct,
    k.mv_lo95_pct AS last_ok_mv_lo95_pct,
    k.mv_hi95_pct AS last_ok_mv_hi95_pct,
    k.datetime_utc AS last_ok_datetime_utc
FROM latest AS l
LEFT JOIN last_ok AS k ON k.parcel_id = l.parcel_id
ORDER BY l.parcel_id
