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
