-- A certConf's follow-up (or the revocation of an unconfirmed certificate)
-- that fails for good ends 'failed' (package enrol/cmp). Until this, a
-- 'rejecting', 'confirming' or 'expiring' transaction whose follow-up was
-- refused for a reason no retry can change (its certificate unknown, a
-- key update that cannot be withdrawn) was claimed again every 5 minutes
-- for ever, and nobody was told. Now it moves to 'failed', with its
-- cmp.followup.failed audit record, and is no longer retried: an operator
-- revokes the certificate by hand (docs/operations.md). The purge deletes
-- a failed transaction like any closed one; the audit record stays.
--
-- SQLite cannot alter a CHECK constraint: the table is rebuilt with its
-- rows, and its indexes (0019, 0021, 0024) made again.
CREATE TABLE cmp_transactions_new (
    transaction_id TEXT    PRIMARY KEY,
    sender         TEXT    NOT NULL,
    serial         TEXT    NOT NULL,
    cert_hash      BLOB    NOT NULL,
    created_at     INTEGER NOT NULL,
    state          TEXT    NOT NULL CHECK (state IN ('waiting', 'confirmed', 'rejected', 'implicit', 'expiring', 'expired', 'unconfirmed', 'rejecting', 'confirming', 'failed')),
    closed_at      INTEGER
);
INSERT INTO cmp_transactions_new (transaction_id, sender, serial, cert_hash, created_at, state, closed_at)
    SELECT transaction_id, sender, serial, cert_hash, created_at, state, closed_at FROM cmp_transactions;
DROP TABLE cmp_transactions;
ALTER TABLE cmp_transactions_new RENAME TO cmp_transactions;

CREATE INDEX cmp_transactions_created ON cmp_transactions (created_at);

CREATE INDEX cmp_transactions_open ON cmp_transactions (created_at) WHERE state IN ('waiting', 'expiring');

CREATE INDEX cmp_transactions_follow_up ON cmp_transactions (closed_at) WHERE state IN ('rejecting', 'confirming');
