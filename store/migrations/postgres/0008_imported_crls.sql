-- CRLs signed elsewhere and published as they are (package ca/crl,
-- Imported): the offline root's CRL, signed in the key ceremony and
-- imported with `thiqa ca crl import`. One row per issuer, replaced only by
-- a newer CRL; every instance reads it, so one import reaches them all.
-- crl_number is decimal text (up to 20 octets), empty when the CRL has
-- none; times are Unix seconds.
CREATE TABLE imported_crls (
    issuer      TEXT    PRIMARY KEY,
    crl_number  TEXT    NOT NULL,
    this_update BIGINT  NOT NULL,
    next_update BIGINT  NOT NULL,
    entries     INTEGER NOT NULL CHECK (entries >= 0),
    der         BYTEA   NOT NULL,
    imported_by TEXT    NOT NULL,
    imported_at BIGINT  NOT NULL
);
