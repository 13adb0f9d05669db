-- Migration 3 → 4: an uncertainty per estimate and the inversion that produced it.
--
-- mv_std_pct  posterior standard deviation of mv_pct (vol.%) under the training noise model of the network;
--             NULL unless status = 'ok'. Rows stored before version 4 keep NULL: their uncertainty was not
--             computed, and none is invented for them.
-- method      the inversion that produced the row: 'single' (the network, one date on its own) or 'temporal'
--             (the joint inversion of a parcel's time series, `plotsm run --inversion temporal`). Rows stored
--             before version 4 were all single-date: 'single'.
--
-- DuckDB cannot add a column with a CHECK constraint, so the table is rebuilt with the constraints of
-- sql/schema.sql, its rows copied over, and renamed into place. Applied by plotsm.store in one transaction
-- together with the version bump: a failure leaves the version-3 table as it was.
CREATE TABLE moisture_v4 (
    parcel_id      VARCHAR NOT NULL,
    acquisition_id VARCHAR NOT NULL,
    mv_pct         DOUBLE,
    network        VARCHAR,
    status         VARCHAR NOT NULL CHECK (status IN
                       ('ok', 'ndvi_above_max', 'slope_above_max', 'too_few_pixels', 'no_data', 'outside_domain')),
    model_version  VARCHAR,
    mv_std_pct     DOUBLE CHECK (mv_std_pct IS NULL OR mv_std_pct >= 0),
    method         VARCHAR NOT NULL DEFAULT 'single' CHECK (method IN ('single', 'temporal')),
    PRIMARY KEY (parcel_id, acquisition_id),
    CHECK (status = 'ok' OR mv_pct IS NULL),
    CHECK (status = 'ok' OR mv_std_pct IS NULL)
);
INSERT INTO moisture_v4 (parcel_id, acquisition_id, mv_pct, network, status, model_version, mv_std_pct, method)
SELECT parcel_id, acquisition_id, mv_pct, network, status, model_version, NULL, 'single' FROM moisture;
DROP TABLE moisture;
ALTER TABLE moisture_v4 RENAME TO moisture;
UPDATE meta SET value = '4' WHERE key = 'schema_version';
