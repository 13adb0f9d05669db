-- plotsm store schema, version 5: parcels, acquisitions, per-parcel observations and moisture, runs.
--
-- Applied by plotsm.store.Store on every open; every statement is idempotent (IF NOT EXISTS, ON CONFLICT DO
-- NOTHING). The schema version lives in meta('schema_version') and must equal plotsm.store.SCHEMA_VERSION;
-- a store whose version is newer than the code is refused. Times are UTC, stored as TIMESTAMP without a
-- zone. JSON columns hold JSON text. There are no FOREIGN KEY constraints: DuckDB cannot delete a referenced
-- row and re-insert it in one transaction, which is exactly how an acquisition is replaced; the store keeps
-- the references itself (observations/moisture rows are deleted and written with their acquisition).

CREATE TABLE IF NOT EXISTS meta (
    key   VARCHAR PRIMARY KEY,
    value VARCHAR NOT NULL
);
INSERT INTO meta VALUES ('schema_version', '5') ON CONFLICT DO NOTHING;

-- One row per parcel of the current parcel set (Store.write_parcels; the rows it replaces go to parcels_retired).
-- The CRS of geometry_wkb is meta('parcels_crs') as WKT2.
CREATE TABLE IF NOT EXISTS parcels (
    parcel_id    VARCHAR PRIMARY KEY,          -- the user's id, as text
    attributes   JSON    NOT NULL,             -- the user's other columns, one JSON object per parcel
    area_m2      DOUBLE,                       -- equal-area (Lambert azimuthal equal-area around the parcels)
    geometry_wkb BLOB    NOT NULL              -- ISO WKB in the parcels' CRS; an empty polygon if none
);

-- The previous row of each parcel that a parcel-set update removed or gave a new geometry (v3): their moisture
-- and observations stay, so their history stays queryable and exported. crs_wkt: the CRS of geometry_wkb.
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

-- One row per Sentinel-1 acquisition processed.
CREATE TABLE IF NOT EXISTS acquisitions (
    acquisition_id  VARCHAR PRIMARY KEY,
    datetime_utc    TIMESTAMP NOT NULL,        -- UTC
    platform        VARCHAR,                   -- e.g. S1A
    orbit_direction VARCHAR,                   -- ascending / descending
    relative_orbit  INTEGER,
    inputs          JSON NOT NULL,             -- list of {role, path, sha256} of the rasters used
    settings        JSON NOT NULL,             -- run settings of this acquisition
    apriori         VARCHAR,                   -- a-priori moisture state: dry, wet, none
    network         VARCHAR,                   -- inversion network chosen for it
    fingerprint     VARCHAR,                   -- sha256 of inputs, settings, a-priori, parcels, network (v2)
    apriori_reason  VARCHAR,                   -- why that a-priori state (v2)
    ndvi_gap_days   DOUBLE                     -- days between the acquisition and its NDVI's centre (v3)
);

-- Per-parcel zonal statistics of one acquisition (NULL where there was no valid pixel).
CREATE TABLE IF NOT EXISTS observations (
    parcel_id      VARCHAR NOT NULL,
    acquisition_id VARCHAR NOT NULL,
    n_valid        BIGINT,                     -- valid σ⁰ pixels in the parcel
    n_pixels       BIGINT,                     -- pixels in the parcel
    valid_fraction DOUBLE,                     -- n_valid / n_pixels
    vv_linear_mean DOUBLE,                     -- σ⁰_VV averaged in linear units
    vv_linear_std  DOUBLE,
    vv_db          DOUBLE,                     -- 10·log10(vv_linear_mean)
    theta_deg      DOUBLE,                     -- incidence angle
    ndvi           DOUBLE,
    slope_deg      DOUBLE,                     -- NULL without a slope raster
    PRIMARY KEY (parcel_id, acquisition_id)
);

-- Moisture of one parcel at one acquisition, with its quality flag, its uncertainty, its credible intervals and
-- how it was estimated.
CREATE TABLE IF NOT EXISTS moisture (
    parcel_id      VARCHAR NOT NULL,
    acquisition_id VARCHAR NOT NULL,
    mv_pct         DOUBLE,                     -- volumetric soil moisture, vol.%; NULL unless status = 'ok'
    network        VARCHAR,
    status         VARCHAR NOT NULL CHECK (status IN
                       ('ok', 'ndvi_above_max', 'slope_above_max', 'too_few_pixels', 'no_data', 'outside_domain')),
    model_version  VARCHAR,
    -- posterior standard deviation of mv_pct, vol.%, under the network's training noise model (v4); NULL unless
    -- status = 'ok', and NULL for rows stored before version 4
    mv_std_pct     DOUBLE CHECK (mv_std_pct IS NULL OR mv_std_pct >= 0),
    -- the inversion that produced the row (v4): 'single' (one date on its own) or 'temporal' (the joint inversion
    -- of the parcel's series, which rewrites mv_pct, mv_std_pct and the intervals below of 'ok' rows only)
    method         VARCHAR NOT NULL DEFAULT 'single' CHECK (method IN ('single', 'temporal')),
    -- equal-tailed posterior credible intervals of moisture, vol.% (v5): the 15.87 % and 84.13 % quantiles
    -- (68 %) and the 2.5 % and 97.5 % quantiles (95 %). NULL unless status = 'ok', all four or none, ordered
    -- mv_lo95_pct <= mv_lo68_pct <= mv_hi68_pct <= mv_hi95_pct; mv_pct need not lie inside them (a single-date
    -- mv_pct is the network's estimate, not the posterior's). NULL for rows stored before version 5
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

-- One row per plotsm command that wrote to the store.
CREATE TABLE IF NOT EXISTS runs (
    run_id         VARCHAR PRIMARY KEY,
    started_utc    TIMESTAMP NOT NULL,
    finished_utc   TIMESTAMP,
    plotsm_version VARCHAR NOT NULL,
    settings       JSON NOT NULL,
    timings        JSON NOT NULL,              -- seconds per stage
    command        VARCHAR NOT NULL            -- the command line
);
