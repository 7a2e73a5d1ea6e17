-- A renewal whose new certificate was never taken up: a CMP key update
-- (kur) without implicit confirmation whose certificate its holder
-- rejected, or never confirmed within confirmWaitTime (RFC 9483 §4.1.1),
-- and which was revoked for it. The replaced certificate was left valid
-- (it is superseded only once the new one is confirmed), and its holder
-- must be able to update it again: renewal_withdrawn_at records when the
-- renewal was withdrawn, and a withdrawn certificate no longer counts as
-- the successor of the one it was to replace (the unique index below, the
-- successor and expiry queries of package store).
ALTER TABLE certificates ADD COLUMN renewal_withdrawn_at INTEGER;

DROP INDEX certificates_replaces;
CREATE UNIQUE INDEX certificates_replaces ON certificates (replaces) WHERE state <> 'abandoned' AND replaces IS NOT NULL AND renewal_withdrawn_at IS NULL;
