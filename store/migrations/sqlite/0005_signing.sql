-- Signing credentials (cmd/thiqa signing service): keys generated on the
-- token at issuance (keyInHSM) and certified by the CA, bound to their
-- owner: an agency (owner_id = the certificate subject's
-- organizationIdentifier) for e-seals, a citizen (owner_id = the civil number
-- in the subject's serialNumber) for remote signatures with sole control.
-- A citizen's signing PIN is kept only as an argon2id hash (package
-- internal/pin); pin_failures counts consecutive wrong tries (locked at the
-- limit, reset by a right PIN).
CREATE TABLE signing_credentials (
    id           TEXT    PRIMARY KEY,
    owner_kind   TEXT    NOT NULL CHECK (owner_kind IN ('agency', 'citizen')),
    owner_id     TEXT    NOT NULL,
    profile      TEXT    NOT NULL,
    key_label    TEXT    NOT NULL,
    cert_serial  TEXT    NOT NULL,
    chain_der    BLOB    NOT NULL,
    not_after    INTEGER NOT NULL,
    pin_hash     TEXT,
    pin_failures INTEGER NOT NULL DEFAULT 0 CHECK (pin_failures >= 0),
    pin_set_at   INTEGER,
    created_at   INTEGER NOT NULL
);

CREATE INDEX signing_credentials_owner ON signing_credentials (owner_kind, owner_id);

-- Signature activation data: one-time authorisations of a credential for
-- exactly the listed hashes, until expires_at. Only the SHA-256 of the SAD
-- value is stored; used_at is set by the one UPDATE that consumes it.
CREATE TABLE signing_sads (
    sad_hash      BLOB    PRIMARY KEY,
    credential_id TEXT    NOT NULL REFERENCES signing_credentials (id),
    hash_alg      TEXT    NOT NULL,
    hashes        TEXT    NOT NULL,
    num_signatures INTEGER NOT NULL CHECK (num_signatures > 0),
    expires_at    INTEGER NOT NULL,
    used_at       INTEGER,
    created_at    INTEGER NOT NULL
);

CREATE INDEX signing_sads_expires ON signing_sads (expires_at);
