-- Digital ID (package identity): the OpenID Connect provider's state, so
-- that any number of stateless instances can serve logins.

-- Registered portals (relying parties). redirect_uris is a JSON array,
-- compared exactly; jwks holds the client's public keys (private_key_jwt).
CREATE TABLE oidc_clients (
    id                 TEXT    PRIMARY KEY,
    name               TEXT    NOT NULL,
    redirect_uris      TEXT    NOT NULL,
    allow_civil_number INTEGER NOT NULL CHECK (allow_civil_number IN (0, 1)),
    sector_identifier  TEXT    NOT NULL,
    auth_method        TEXT    NOT NULL CHECK (auth_method IN ('private_key_jwt', 'tls_client_auth')),
    jwks               TEXT,
    tls_subject        TEXT,
    created_at         INTEGER NOT NULL
);

-- Remote (mobile ID) logins in progress. The browser proves it started the
-- login with a secret whose SHA-256 is browser_key_hash.
CREATE TABLE oidc_logins (
    id                TEXT    PRIMARY KEY,
    browser_key_hash  BLOB    NOT NULL,
    request           TEXT    NOT NULL,
    civil_number      TEXT    NOT NULL,
    verification_code TEXT    NOT NULL,
    state             TEXT    NOT NULL CHECK (state IN ('pending', 'approved', 'denied', 'used')),
    citizen           TEXT,
    auth_time         INTEGER,
    reason            TEXT,
    created_at        INTEGER NOT NULL,
    expires_at        INTEGER NOT NULL
);

-- The citizen's app lists its pending logins.
CREATE INDEX oidc_logins_pending ON oidc_logins (civil_number, expires_at) WHERE state = 'pending';

CREATE INDEX oidc_logins_expires ON oidc_logins (expires_at);

-- Authorization codes (by SHA-256) and what they issued: the grant ID is
-- the access token's jti, so revoking the grant revokes the token.
CREATE TABLE oidc_grants (
    id                TEXT    PRIMARY KEY,
    code_hash         BLOB    NOT NULL UNIQUE,
    request           TEXT    NOT NULL,
    citizen           TEXT    NOT NULL,
    method            TEXT    NOT NULL,
    acr               TEXT    NOT NULL,
    amr               TEXT    NOT NULL,
    auth_time         INTEGER NOT NULL,
    created_at        INTEGER NOT NULL,
    code_expires_at   INTEGER NOT NULL,
    redeemed_at       INTEGER,
    revoked_at        INTEGER,
    access_expires_at INTEGER
);

CREATE INDEX oidc_grants_created ON oidc_grants (created_at);

-- Client assertion IDs seen (RFC 7523 replay protection), kept until the
-- assertion expires.
CREATE TABLE oidc_assertion_jtis (
    client_id  TEXT    NOT NULL,
    jti        TEXT    NOT NULL,
    expires_at INTEGER NOT NULL,
    PRIMARY KEY (client_id, jti)
);

CREATE INDEX oidc_assertion_jtis_expires ON oidc_assertion_jtis (expires_at);

-- Mobile ID enrolments: a citizen's remote authentication credential (a
-- citizen-auth key on the token, certificates.credential_id) activated with
-- a login PIN (package pin's Store: argon2id hash and the count of
-- consecutive wrong tries). A citizen's newest enrolment is the one used.
CREATE TABLE oidc_mobile_ids (
    credential_id TEXT    PRIMARY KEY,
    civil_number  TEXT    NOT NULL,
    pin_hash      TEXT,
    pin_failures  INTEGER NOT NULL DEFAULT 0 CHECK (pin_failures >= 0),
    enrolled_at   INTEGER  NOT NULL
);

CREATE INDEX oidc_mobile_ids_civil ON oidc_mobile_ids (civil_number, enrolled_at);
