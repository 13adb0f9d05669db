-- Acquisitions stored with --inversion temporal (the members of the joint inversion's windows), oldest first.
--
-- Parameters: none.
--
-- One row per acquisition whose settings say "inversion": "temporal", in time order: its relative orbit (its
-- window when windows are per orbit), its network, the folder of its networks (models_dir, NULL: the shipped
-- ones), its temporal settings (JSON text), its 'ok' rows (n_ok) and how many of those are still single-date
-- (n_single_ok > 0: its window was not inverted jointly since it was written, e.g. a run stopped in between).
SELECT
    a.acquisition_id,
    a.datetime_utc,
    a.relative_orbit,
    a.network,
    json_extract_string(a.settings, '$.models_dir') AS models_dir,
    CAST(json_extract(a.settings, '$.temporal') AS VARCHAR) AS temporal_settings,
    count(m.parcel_id) FILTER (WHERE m.status = 'ok') AS n_ok,
    count(m.parcel_id) FILTER (WHERE m.status = 'ok' AND m.method = 'single') AS n_single_ok
FROM acquisitions AS a
LEFT JOIN moisture AS m ON m.acquisition_id = a.acquisition_id
WHERE json_extract_string(a.settings, '$.inversion') = 'temporal'
GROUP BY a.acquisition_id, a.datetime_utc, a.relative_orbit, a.network, a.settings
ORDER BY a.datetime_utc, a.acquisition_id
