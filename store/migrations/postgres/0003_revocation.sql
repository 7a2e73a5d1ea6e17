-- Revocation (package ca/crl and ca/ocsp): one row per revoked certificate,
-- keyed by its serial. Revocation is final: a row is never updated or
-- deleted (no certificateHold), so a second revocation is a conflict.
-- ca and crl_partition are copied from the certificate so a CRL partition
-- streams from one index; revoked_at is Unix nanoseconds (whole seconds:
-- CRLs and OCSP carry seconds).
CREATE TABLE revocations (
    serial        TEXT    PRIMARY KEY REFERENCES certificates (serial),
    ca            TEXT    NOT NULL,
    crl_partition INTEGER NOT NULL CHECK (crl_partition >= 0),
    revoked_at    BIGINT  NOT NULL,
    reason        INTEGER NOT NULL CHECK (reason IN (0, 1, 2, 3, 4, 5, 9, 10)),
    revoked_by    TEXT    NOT NULL,
    recorded_at   BIGINT  NOT NULL
);

-- CRL streaming: the revoked entries of one (CA, partition) in serial order.
CREATE INDEX revocations_ca_partition ON revocations (ca, crl_partition, serial);

-- Other instances poll for revocations recorded since their last look.
CREATE INDEX revocations_recorded_at ON revocations (recorded_at);

-- The last CRL number handed out per issuing CA. NextCRLNumber increments
-- it in a write transaction, so numbers strictly increase across restarts
-- and across instances sharing the database.
CREATE TABLE crl_numbers (
    ca          TEXT   PRIMARY KEY,
    last_number BIGINT NOT NULL CHECK (last_number >= 0)
);
