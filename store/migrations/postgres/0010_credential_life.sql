-- The life cycle of citizens' credentials (issue 16).
--
-- PIN reset and activation (package internal/pin): a registration officer's
-- reset clears a credential's PIN and failure count and records a one-time
-- activation code, kept only as its SHA-256 (activation_hash), usable until
-- activation_expires_at; activation_failures counts wrong codes (the code is
-- void at the limit). The holder sets the new PIN with the code, which
-- clears the three columns. A mobile ID is enrolled the same way, so that no
-- operator ever chooses or sees a citizen's PIN.
ALTER TABLE signing_credentials ADD COLUMN activation_hash BYTEA;
ALTER TABLE signing_credentials ADD COLUMN activation_expires_at BIGINT;
ALTER TABLE signing_credentials ADD COLUMN activation_failures INTEGER NOT NULL DEFAULT 0 CHECK (activation_failures >= 0);
ALTER TABLE oidc_mobile_ids ADD COLUMN activation_hash BYTEA;
ALTER TABLE oidc_mobile_ids ADD COLUMN activation_expires_at BIGINT;
ALTER TABLE oidc_mobile_ids ADD COLUMN activation_failures INTEGER NOT NULL DEFAULT 0 CHECK (activation_failures >= 0);

-- Renewal and re-key (package ca): a certificate may replace another one
-- of the same subject and profile (replaces), with the same key (renewal)
-- or a new one (re-key); a credential keeps its ID (credential_id) across
-- both, and its current certificate is the newest one issued for it. When
-- a re-key made a new key on the token, key_label names it (NULL: the
-- credential ID is the label). renewal_completed_at records that what
-- follows a renewal is done: the credential switched, the replaced
-- certificate revoked (superseded), the replaced key destroyed; until then
-- a server's sweep completes it, so that a crash in between loses nothing.
ALTER TABLE certificates ADD COLUMN replaces TEXT;
ALTER TABLE certificates ADD COLUMN key_label TEXT;
ALTER TABLE certificates ADD COLUMN renewal_completed_at BIGINT;

-- "Certified once" becomes: a key is certified at most once per profile by
-- a new issuance; every other certificate of it replaces an earlier one,
-- and a certificate is replaced at most once (two racing renewals cannot
-- both issue). A key never names two subjects: the CA's intent insert
-- refuses a key that another subject's live certificate has.
DROP INDEX certificates_profile_key;
CREATE UNIQUE INDEX certificates_profile_key ON certificates (profile, key_hash) WHERE state <> 'abandoned' AND replaces IS NULL;
CREATE UNIQUE INDEX certificates_replaces ON certificates (replaces) WHERE state <> 'abandoned' AND replaces IS NOT NULL;
CREATE INDEX certificates_renewal_pending ON certificates (issued_at) WHERE replaces IS NOT NULL AND renewal_completed_at IS NULL;

-- What expires soon (GET /api/v1/certificates?expiringWithin=, the
-- thiqa_certificates_expiring metric).
CREATE INDEX certificates_not_after ON certificates (not_after) WHERE state = 'issued';
