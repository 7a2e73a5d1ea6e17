-- Certificates issued by the CA (package ca): one row per serial, written
-- first as an intent (serial reserved, hash of the linted TBSCertificate
-- pinned) before the CA key signs, then completed with the certificate.
-- Revocation lives in its own table (0003), keyed by serial.
--
-- Uniqueness the CA relies on:
--   * serial (primary key);
--   * request_id, the client's idempotency key, when given;
--   * (profile, key_hash) among live rows: a subject key is certified at
--     most once per profile, so two identical requests racing each other
--     cannot both issue. Renewal needs a new key. An intent that was never
--     completed (the signing failed) is marked 'abandoned' after a grace
--     period and no longer blocks its key; its serial stays reserved.
CREATE TABLE certificates (
    serial        TEXT    PRIMARY KEY CHECK (length(serial) BETWEEN 2 AND 40),
    ca            TEXT    NOT NULL,
    profile       TEXT    NOT NULL,
    state         TEXT    NOT NULL CHECK (state IN ('intent', 'issued', 'abandoned')),
    tbs_hash      BLOB    NOT NULL,
    key_hash      BLOB    NOT NULL,
    request_id    TEXT,
    requested_by  TEXT    NOT NULL,
    credential_id TEXT,
    subject       TEXT,
    not_before    INTEGER,
    not_after     INTEGER NOT NULL,
    der           BLOB,
    crl_partition INTEGER NOT NULL DEFAULT 0 CHECK (crl_partition >= 0),
    created_at    INTEGER NOT NULL,
    issued_at     INTEGER
);

CREATE UNIQUE INDEX certificates_request_id ON certificates (request_id) WHERE request_id IS NOT NULL;

CREATE UNIQUE INDEX certificates_profile_key ON certificates (profile, key_hash) WHERE state <> 'abandoned';

CREATE INDEX certificates_ca_partition ON certificates (ca, crl_partition);

CREATE INDEX certificates_credential ON certificates (credential_id) WHERE credential_id IS NOT NULL;
