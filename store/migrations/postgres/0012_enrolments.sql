-- Enrolment (package enrol): a registration officer records who may enrol
-- (profile and subject, checked then) and hands the holder a one-time
-- reference and secret for CMP (password-based MAC) or EST (HTTP Basic).
-- The secret is derived from the reference by a key on the token and
-- stored here only as its SHA-256. A row goes open -> claimed (a request
-- is being issued under it) -> used (serial names the certificate); a
-- refused request puts it back to open. Rows are never deleted.
CREATE TABLE enrolments (
    reference    TEXT    PRIMARY KEY,
    profile      TEXT    NOT NULL,
    subject      TEXT    NOT NULL,
    secret_hash  BYTEA    NOT NULL CHECK (octet_length(secret_hash) = 32),
    created_by   TEXT    NOT NULL,
    created_at   BIGINT NOT NULL,
    expires_at   BIGINT NOT NULL,
    state        TEXT    NOT NULL CHECK (state IN ('open', 'claimed', 'used')),
    claim        TEXT,
    claimed_at   BIGINT,
    serial       TEXT,
    used_at      BIGINT
);

-- CMP transactions (package enrol/cmp): the certificate a transaction
-- issued, until the client confirms it (certConf) or the server granted
-- implicit confirmation. sender names who protected the request
-- ("ref:<reference>" or "cert:<serial>"): the confirmation must come from
-- the same party.
CREATE TABLE cmp_transactions (
    transaction_id TEXT    PRIMARY KEY,
    sender         TEXT    NOT NULL,
    serial         TEXT    NOT NULL,
    cert_hash      BYTEA    NOT NULL,
    created_at     BIGINT NOT NULL,
    state          TEXT    NOT NULL CHECK (state IN ('waiting', 'confirmed', 'rejected', 'implicit')),
    closed_at      BIGINT
);
