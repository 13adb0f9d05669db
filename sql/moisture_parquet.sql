-- One acquisition's moisture with its model inputs: one file of the Hive-partitioned Parquet dataset
-- <out>/parquet/moisture/year=YYYY/month=MM/<acquisition_id>.parquet that `plotsm run` writes.
--
-- Parameters:
--   $acquisition_id  the acquisition (acquisitions.acquisition_id)
--
-- One row per parcel, ordered by parcel_id; mv_std_pct, the credible intervals mv_lo68_pct, mv_hi68_pct,
-- mv_lo95_pct, mv_hi95_pct (DOUBLE, vol.%) and method as in sql/export.sql. The joint inversion
-- (--inversion temporal) rewrites the files of the acquisitions of each window it re-estimates. year and month are not columns: readers take them from the folder
-- names (DuckDB: read_parquet('…/*/*/*.parquet', hive_partitioning = true); Arrow/Spark: hive partitioning).
SELECT
    m.parcel_id,
    m.acquisition_id,
    a.datetime_utc,
    a.platform,
    a.orbit_direction,
    a.relative_orbit,
    a.apriori,
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
    o.n_valid
FROM moisture AS m
JOIN acquisitions AS a ON a.acquisition_id = m.acquisition_id
JOIN observations AS o ON o.acquisition_id = m.acquisition_id AND o.parcel_id = m.parcel_id
WHERE m.acquisition_id = CAST($acquisition_id AS VARCHAR)
ORDER BY m.parcel_id
