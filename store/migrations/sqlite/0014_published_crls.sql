-- The CRLs the `thiqa serve` nodes sharing this database serve (package
-- ca/crl, SharedStore): per CA and partition the newest complete CRL and,
-- with delta CRLs, the delta whose base it is, signed by the node holding
-- the CA's CRL lock. Every node serves the pair from serve_from (Unix
-- nanoseconds) on. Numbers are decimal text zero-padded to 49 digits (up
-- to 2^160), so they order as text; other times are Unix seconds.
-- fingerprint names the settings the pair was made under.
CREATE TABLE published_crls (
    ca                   TEXT    NOT NULL,
    crl_partition        INTEGER NOT NULL CHECK (crl_partition >= 0),
    fingerprint          TEXT    NOT NULL,
    serve_from           INTEGER NOT NULL,
    complete_number      TEXT    NOT NULL,
    complete_this_update INTEGER NOT NULL,
    complete_next_update INTEGER NOT NULL,
    complete_entries     INTEGER NOT NULL CHECK (complete_entries >= 0),
    complete_der         BLOB    NOT NULL,
    delta_number         TEXT,
    delta_this_update    INTEGER,
    delta_next_update    INTEGER,
    delta_entries        INTEGER,
    delta_der            BLOB,
    PRIMARY KEY (ca, crl_partition)
);
