-- Rewrite the estimate of 'ok' moisture rows (the joint inversion's pass): mv_pct, mv_std_pct, the credible
-- intervals and method.
--
-- Parameters:
--   $method  the inversion that made the new estimates ('temporal')
--
-- Reads the relation plotsm_revised_in (parcel_id, acquisition_id, mv_pct, mv_std_pct, mv_lo68_pct, mv_hi68_pct,
-- mv_lo95_pct, mv_hi95_pct) that plotsm.store.revise registers for the statement; the interval columns are NaN
-- (stored as NULL) when the caller gave none, so a revised row never keeps the intervals of its old estimate.
-- mv_lo68_pct/mv_hi68_pct are the 15.87 % and 84.13 % posterior quantiles, mv_lo95_pct/mv_hi95_pct the 2.5 % and
-- 97.5 % ones (vol.%). Only rows whose status is 'ok' are touched: a date the single-date masks rejected never
-- gets an estimate, and the status of a row never changes. Run by Store.revise_moisture inside its transaction,
-- which checks the intervals (all four or none, ordered) and that every given row was updated.
UPDATE moisture AS m
SET mv_pct = r.mv_pct,
    mv_std_pct = nullif(r.mv_std_pct, 'NaN'::DOUBLE),
    method = CAST($method AS VARCHAR),
    mv_lo68_pct = nullif(r.mv_lo68_pct, 'NaN'::DOUBLE),
    mv_hi68_pct = nullif(r.mv_hi68_pct, 'NaN'::DOUBLE),
    mv_lo95_pct = nullif(r.mv_lo95_pct, 'NaN'::DOUBLE),
    mv_hi95_pct = nullif(r.mv_hi95_pct, 'NaN'::DOUBLE)
FROM (
    SELECT CAST(parcel_id AS VARCHAR) AS parcel_id, CAST(acquisition_id AS VARCHAR) AS acquisition_id,
           CAST(mv_pct AS DOUBLE) AS mv_pct, CAST(mv_std_pct AS DOUBLE) AS mv_std_pct,
           CAST(mv_lo68_pct AS DOUBLE) AS mv_lo68_pct, CAST(mv_hi68_pct AS DOUBLE) AS mv_hi68_pct,
           CAST(mv_lo95_pct AS DOUBLE) AS mv_lo95_pct, CAST(mv_hi95_pct AS DOUBLE) AS mv_hi95_pct
    FROM plotsm_revised_in
) AS r
WHERE m.parcel_id = r.parcel_id AND m.acquisition_id = r.acquisition_id AND m.status = 'ok'
