-- Inputs of the joint inversion over one window: θ, NDVI and σ⁰ of each 'ok' single-date estimate, in time order.
--
-- Parameters:
--   $by_orbit        true: the window is the acquisitions of $relative_orbit; false: those of every orbit
--   $relative_orbit  the window's relative orbit (ignored when $by_orbit is false; NULL: acquisitions without one)
--
-- The window holds the acquisitions stored with --inversion temporal (settings.inversion = 'temporal'). One row per
-- moisture row whose status is 'ok' (the joint inversion never estimates a date the single-date masks rejected),
-- ordered by time, acquisition and parcel: parcel_id, acquisition_id, datetime_utc, relative_orbit, network (the
-- a-priori group: each network is inverted on its own dates), theta_deg, ndvi, vv_db.
SELECT
    m.parcel_id,
    m.acquisition_id,
    a.datetime_utc,
    a.relative_orbit,
    a.network,
    o.theta_deg,
    o.ndvi,
    o.vv_db
FROM moisture AS m
JOIN acquisitions AS a ON a.acquisition_id = m.acquisition_id
JOIN observations AS o ON o.acquisition_id = m.acquisition_id AND o.parcel_id = m.parcel_id
WHERE m.status = 'ok'
  AND json_extract_string(a.settings, '$.inversion') = 'temporal'
  AND (NOT CAST($by_orbit AS BOOLEAN) OR a.relative_orbit IS NOT DISTINCT FROM CAST($relative_orbit AS INTEGER))
ORDER BY a.datetime_utc, m.acquisition_id, m.parcel_id
