-- Renewals that the instances sharing this database coordinate (package
-- timestamp, UnitRenewals): of the instances that find a key and
-- certificate due at the same time, the one whose claim is recorded here
-- renews; the others adopt what it recorded. One row per renewed
-- certificate: subject names what is renewed ("tsa-unit"), previous the
-- serial (hex) of the certificate replaced. holder and claimed_until are
-- the live claim (Unix nanoseconds; a lapsed claim may be taken over);
-- key_label, cert and chain (DER, concatenated) the replacement, NULL until
-- the renewal is complete.
CREATE TABLE renewal_claims (
    subject       TEXT    NOT NULL,
    previous      TEXT    NOT NULL,
    holder        TEXT    NOT NULL,
    claimed_until INTEGER NOT NULL,
    key_label     TEXT,
    cert          BLOB,
    chain         BLOB,
    completed_at  INTEGER,
    PRIMARY KEY (subject, previous)
);
