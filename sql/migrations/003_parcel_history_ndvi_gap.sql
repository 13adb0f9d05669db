-- Migration 2 → 3: the history of parcels that left the parcel set, and the NDVI pairing gap per acquisition.
--
-- parcels_retired  the previous row of each parcel that a parcel-set update removed or gave a new geometry
--                  (`plotsm run --parcels-update replace`), with the CRS of its geometry and when and why it was
--                  retired: their moisture and observations stay in the store, queryable and exported.
-- ndvi_gap_days    days between the acquisition and the centre of the NDVI raster paired with it (mid-month for a
--                  monthly composite, midday for a single date); NULL when the NDVI's date is unknown.
-- Applied by plotsm.store in one transaction together with the version bump.
CREATE TABLE IF NOT EXISTS parcels_retired (
    parcel_id    VARCHAR   NOT NULL,
    retired_utc  TIMESTAMP NOT NULL,
    reason       VARCHAR   NOT NULL CHECK (reason IN ('removed', 'geometry changed')),
    attributes   JSON      NOT NULL,
    area_m2      DOUBLE,
    geometry_wkb BLOB      NOT NULL,
    crs_wkt      VARCHAR   NOT NULL,
    PRIMARY KEY (parcel_id, retired_utc)
);
ALTER TABLE acquisitions ADD COLUMN IF NOT EXISTS ndvi_gap_days DOUBLE;
UPDATE meta SET value = '3' WHERE key = 'schema_version';
