-- Migration 4 → 5: the equal-tailed posterior credible intervals of each estimate.
--
-- mv_lo68_pct, mv_hi68_pct  the 15.87 % and 84.13 % posterior quantiles of moisture (vol.%): the 68 % interval;
-- mv_lo95_pct, mv_hi95_pct  the 2.5 % and 97.5 % posterior quantiles (vol.%): the 95 % interval.
-- All four are NULL unless status = 'ok'; per row either all four are NULL or none is, and when given
-- mv_lo95_pct <= mv_lo68_pct <= mv_hi68_pct <= mv_hi95_pct. mv_pct need not lie inside them (a single-date
-- mv_pct is the network's estimate, not the posterior's). Rows stored before version 5 keep NULL: their
-- intervals were not computed, and none is invented for them.
--
-- DuckDB cannot add a column with a CHECK constraint, so the table is rebuilt with the constraints of
-- sql/schema.sql, its rows copied over, and renamed into place. Applied by plotsm.store in one transaction
-- together with the version bump: a failure leaves the version-4 table as it was.
CREATE TABLE moisture_v5 (
    parcel_id      VARCHAR NOT NULL,
    acquisition_id VARCHAR NOT NULL,
    mv_pct         DOUBLE,
    network        VARCHAR,
    status         VARCHAR NOT NULL CHECK (status IN
                       ('ok', 'ndvi_above_max', 'slope_above_max', 'too_few_pixels', 'no_data', 'outside_domain')),
    model_version  VARCHAR,
    mv_std_pct     DOUBLE CHECK (mv_std_pct IS NULL OR mv_std_pct >= 0),
    method         VARCHAR NOT NULL DEFAULT 'single' CHECK (method IN ('single', 'temporal')),
    mv_lo68_pct    DOUBLE,
    mv_hi68_pct    DOUBLE,
    mv_lo95_pct    DOUBLE,
    mv_hi95_pct    DOUBLE,
    PRIMARY KEY (parcel_id, acquisition_id),
    CHECK (status = 'ok' OR mv_pct IS NULL),
    CHECK (status = 'ok' OR mv_std_pct IS NULL),
    CHECK (status = 'ok' OR (mv_lo68_pct IS NULL AND mv_hi68_pct IS NULL AND mv_lo95_pct IS NULL
                             AND mv_hi95_pct IS NULL)),
    CHECK ((mv_lo68_pct IS NULL AND mv_hi68_pct IS NULL AND mv_lo95_pct IS NULL AND mv_hi95_pct IS NULL)
           OR (mv_lo68_pct IS NOT NULL AND mv_hi68_pct IS NOT NULL AND mv_lo95_pct IS NOT NULL
               AND mv_hi95_pct IS NOT NULL)),
    CHECK (mv_lo68_pct IS NULL
           OR (mv_lo95_pct <= mv_lo68_pct AND mv_lo68_pct <= mv_hi68_pct AND mv_hi68_pct <= mv_hi95_pct))
);
INSERT INTO moisture_v5 (parcel_id, acquisition_id, mv_pct, network, status, model_version, mv_std_pct, method,
                         mv_lo68_pct, mv_hi68_pct, mv_lo95_pct, mv_hi95_pct)
SELECT parcel_id, acquisition_id, mv_pct, network, status, model_version, mv_std_pct, method, NULL, NULL, NULL, NULL
FROM moisture;
DROP TABLE moisture;
ALTER TABLE moisture_v5 RENAME TO moisture;
UPDATE meta SET value = '5' WHERE key = 'schema_version';
