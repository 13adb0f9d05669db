-- Migration 1 → 2: per-acquisition fingerprint (incremental runs) and the reason of the a-priori choice.
--
-- fingerprint     sha256 over the input rasters' sha256, the run settings, the a-priori state, the parcel set and
--                 the network version: an acquisition whose fingerprint is unchanged is skipped by `plotsm run`.
-- apriori_reason  why the a-priori state was chosen (the weather rule's numbers, or "set by --apriori").
-- Applied by plotsm.store in one transaction together with the version bump.
ALTER TABLE acquisitions ADD COLUMN IF NOT EXISTS fingerprint VARCHAR;
ALTER TABLE acquisitions ADD COLUMN IF NOT EXISTS apriori_reason VARCHAR;
UPDATE meta SET value = '2' WHERE key = 'schema_version';
