-- Moisture rows with their observation inputs and acquisition time, ready to join to parcel geometries.
--
-- Parameters:
--   $date  a UTC date (ISO, 2024-04-06) to keep only that day's acquisitions; NULL for all of them
--
-- One row per (parcel, acquisition) with moisture, ordered by parcel_id then time. mv_std_pct is the posterior
-- standard deviation of mv_pct (vol.%; NULL unless 'ok', and for rows stored before schema 4); mv_lo68_pct and
-- mv_hi68_pct are the 15.87 % and 84.13 % posterior quantiles of moisture, mv_lo95_pct and mv_hi95_pct the 2.5 %
-- and 97.5 % ones (vol.%; equal-tailed credible intervals, NULL unless 'ok', and for rows stored before schema 5;
-- mv_pct need not lie inside them); method says which inversion made the row: 'single' (one date) or 'temporal'
-- (the joint inversion of the parcel's series). plotsm.export joins these rows to the parcels' geometries (in
-- the parcels' CRS) to write GeoParquet or GeoPackage.
SELECT
    m.parcel_id,
    m.acquisition_id,
    a.datetime_utc,
    a.platform,
    a.orbit_direction,
    a.relative_orbit,
    m.mv_pct,
    m.mv_std_pct,
    m.mv_lo68_pct,
    m.mv_hi68_pct,
    m.mv_lo95_pct,
    m.mv_hi95_pct,
    m.method,
    m.status,
    m.network,
    m.model_version,
    o.n_valid,
    o.n_pixels,
    o.valid_fraction,
    o.vv_db,
    o.vv_linear_std,
    o.theta_deg,
    o.ndvi,
    o.slope_deg
FROM moisture AS m
JOIN acquisitions AS a ON a.acquisition_id = m.acquisition_id
LEFT JOIN observations AS o ON o.parcel_id = m.parcel_id AND o.acquisition_id = m.acquisition_id
WHERE CAST($date AS DATE) IS NULL OR CAST(a.datetime_utc AS DATE) = CAST($date AS DATE)
ORDER BY m.parcel_id, a.datetime_utc, m.acquisition_id
