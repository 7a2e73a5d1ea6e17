-- Key compromise (package ca/revocation): revoking a certificate for
-- keyCompromise blocks its subject key (SPKI SHA-256, certificates.key_hash)
-- for good. The same transaction revokes every other certificate with that
-- key, of any profile and any CA; the CA refuses to certify a blocked key
-- again (intent and certificate alike), and the status checker refuses
-- logins with it. A row is never updated or deleted: serial is the
-- certificate whose keyCompromise revocation blocked the key.
CREATE TABLE blocked_keys (
    key_hash   BLOB    PRIMARY KEY CHECK (length(key_hash) = 32),
    serial     TEXT    NOT NULL REFERENCES certificates (serial),
    blocked_by TEXT    NOT NULL,
    blocked_at INTEGER NOT NULL
);

-- Servers sweep the keys blocked lately for certificates issued while the
-- block was being recorded (a race on PostgreSQL's read committed).
CREATE INDEX blocked_keys_blocked_at ON blocked_keys (blocked_at);

-- Every certificate with a key, whatever its profile.
CREATE INDEX certificates_key_hash ON certificates (key_hash);
