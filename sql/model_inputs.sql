-- Model inputs of one acquisition, built from its observations: the table the inversion network reads.
--
-- Parameters:
--   $acquisition_id  the acquisition (acquisitions.acquisition_id)
--
-- One row per observed parcel, ordered by parcel_id: parcel_id, theta_deg, ndvi, vv_db, slope_deg, n_valid.
-- vv_db = 10·log10 of the linear mean σ⁰ (speckle is averaged in linear units, then converted), as stored with
-- the observations (computed once, in Python: plotsm.store.tables.vv_db_of); NULL where the mean is missing or
-- not positive. slope_deg is NULL when no slope raster was given.
SELECT
    parcel_id,
    theta_deg,
    ndvi,
    vv_db,
    slope_deg,
    n_valid
FROM observations
WHERE acquisition_id = CAST($acquisition_id AS VARCHAR)
ORDER BY parcel_id
