-- The follow-up of a certConf (package enrol/cmp), retried until it is
-- done. A rejection revokes the rejected certificate and withdraws its key
-- update; a positive certConf for a key update (kur) without implicit
-- confirmation supersedes the certificate it replaced. Until this, the
-- transaction was closed ('rejected', 'confirmed') before that ran, and a
-- failure (the database or the HSM unreachable for a moment) was only
-- logged: the rejected certificate, or the replaced one, stayed valid for
-- good. Now the certConf closes it 'rejecting' or 'confirming' (closed_at
-- is the claim's time) and moves it on to 'rejected' or 'confirmed' once
-- the follow-up is done; the sweep of every node (every minute) claims
-- those left undone for 5 minutes (enrol.ExpiryLease) and does it. The
-- purge never deletes them (store.PurgeTransactions).
--
-- SQLite cannot alter a CHECK constraint: the table is rebuilt with its
-- rows, and its indexes (0019, 0021) made again.
CREATE TABLE cmp_transactions_new (
    transaction_id TEXT    PRIMARY KEY,
    sender         TEXT    NOT NULL,
    serial         TEXT    NOT NULL,
    cert_hash      BLOB    NOT NULL,
    created_at     INTEGER NOT NULL,
    state          TEXT    NOT NULL CHECK (state IN ('waiting', 'confirmed', 'rejected', 'implicit', 'expiring', 'expired', 'unconfirmed', 'rejecting', 'confirming')),
    closed_at      INTEGER
);
INSERT INTO cmp_transactions_new (transaction_id, sender, serial, cert_hash, created_at, state, closed_at)
    SELECT transaction_id, sender, serial, cert_hash, created_at, state, closed_at FROM cmp_transactions;
DROP TABLE cmp_transactions;
ALTER TABLE cmp_transactions_new RENAME TO cmp_transactions;

CREATE INDEX cmp_transactions_created ON cmp_transactions (created_at);

CREATE INDEX cmp_transactions_open ON cmp_transactions (created_at) WHERE state IN ('waiting', 'expiring');

CREATE INDEX cmp_transactions_follow_up ON cmp_transactions (closed_at) WHERE state IN ('rejecting', 'confirming');
