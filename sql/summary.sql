-- Per-acquisition summary: parcels by status, and mean, min, quartiles and max of mv_pct over the 'ok' parcels.
--
-- Parameters: none.
--
-- One row per acquisition with moisture, oldest first. n_<status> counts the parcels with each flag (they sum to
-- n_parcels). mv_* statistics use the 'ok' rows only (NULL when there are none); quartiles are interpolated
-- linearly between order statistics (quantile_cont, the same as numpy.percentile's default).
SELECT
    a.acquisition_id,
    a.datetime_utc,
    a.network,
    count(*) AS n_parcels,
    count(*) FILTER (WHERE m.status = 'ok') AS n_ok,
    count(*) FILTER (WHERE m.status = 'no_data') AS n_no_data,
    count(*) FILTER (WHERE m.status = 'too_few_pixels') AS n_too_few_pixels,
    count(*) FILTER (WHERE m.status = 'ndvi_above_max') AS n_ndvi_above_max,
    count(*) FILTER (WHERE m.status = 'slope_above_max') AS n_slope_above_max,
    count(*) FILTER (WHERE m.status = 'outside_domain') AS n_outside_domain,
    avg(m.mv_pct) FILTER (WHERE m.status = 'ok') AS mv_mean_pct,
    min(m.mv_pct) FILTER (WHERE m.status = 'ok') AS mv_min_pct,
    quantile_cont(m.mv_pct, 0.25) FILTER (WHERE m.status = 'ok') AS mv_p25_pct,
    quantile_cont(m.mv_pct, 0.50) FILTER (WHERE m.status = 'ok') AS mv_median_pct,
    quantile_cont(m.mv_pct, 0.75) FILTER (WHERE m.status = 'ok') AS mv_p75_pct,
    max(m.mv_pct) FILTER (WHERE m.status = 'ok') AS mv_max_pct
FROM moisture AS m
JOIN acquisitions AS a ON a.acquisition_id = m.acquisition_id
GROUP BY a.acquisition_id, a.datetime_utc, a.network
ORDER BY a.datetime_utc, a.acquisition_id
