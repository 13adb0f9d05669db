-- Moisture history of one parcel: every acquisition observed, oldest first, with flag, network and inputs.
--
-- Parameters:
--   $parcel_id  the parcel (parcels.parcel_id, compared as text)
--
-- One row per acquisition in which the parcel was observed. mv_pct, its posterior standard deviation
-- mv_std_pct and its equal-tailed credible intervals (mv_lo68_pct/mv_hi68_pct: 15.87 % and 84.13 % posterior
-- quantiles; mv_lo95_pct/mv_hi95_pct: 2.5 % and 97.5 %; vol.%, NULL for rows stored before schema 5) are NULL
-- unless status is 'ok'; method is the inversion that made the row ('single' or 'temporal'); status, network
-- and method are NULL for an acquisition written without moisture. vv_db, theta_deg, ndvi, slope_deg and n_valid
-- are the model inputs; inputs is the acquisition's list of rasters ({role, path, sha256}) as JSON text.
SELECT
    a.datetime_utc,
    o.acquisition_id,
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
    o.vv_db,
    o.theta_deg,
    o.ndvi,
    o.slope_deg,
    o.n_valid,
    a.inputs
FROM observations AS o
JOIN acquisitions AS a ON a.acquisition_id = o.acquisition_id
LEFT JOIN moisture AS m ON m.parcel_id = o.parcel_id AND m.acquisition_id = o.acquisition_id
WHERE o.parcel_id = CAST($parcel_id AS VARCHAR)
ORDER BY a.datetime_utc, o.acquisition_id
