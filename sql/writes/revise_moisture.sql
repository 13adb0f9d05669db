-- Rewrite the estimate of 'ok' moisture rows (the joint inversion's pass): mv_pct, mv_std_pct and method.
--
-- Parameters:
--   $method  the inversion that made the new estimates ('temporal')
--
-- Reads the relation plotsm_revised_in (parcel_id, acquisition_id, mv_pct, mv_std_pct) that
-- plotsm.store.revise registers for the statement. Only rows whose status is 'ok' are touched: a date the
-- single-date masks rejected never gets an estimate, and the status of a row never changes. Run by
-- Store.revise_moisture inside its transaction, which checks that every given row was updated.
UPDATE moisture AS m
SET mv_pct = r.mv_pct,
    mv_std_pct = nullif(r.mv_std_pct, 'NaN'::DOUBLE),
    method = CAST($method AS VARCHAR)
FROM (
    SELECT CAST(parcel_id AS VARCHAR) AS parcel_id, CAST(acquisition_id AS VARCHAR) AS acquisition_id,
           CAST(mv_pct AS DOUBLE) AS mv_pct, CAST(mv_std_pct AS DOUBLE) AS mv_std_pct
    FROM plotsm_revised_in
) AS r
WHERE m.parcel_id = r.parcel_id AND m.acquisition_id = r.acquisition_id AND m.status = 'ok'
