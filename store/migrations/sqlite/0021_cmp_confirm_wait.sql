-- The confirmation window of CMP (enrol.ConfirmWaitTime, RFC 9810
-- §5.1.1.2): a transaction whose client sent no certConf in time goes
-- waiting -> expiring (a server claimed it and is revoking its
-- certificate; closed_at is the claim's time, a stale claim is taken over)
-- -> expired (revoked, closed). The sweep finds the transactions still
-- open by the partial index; the purge never deletes them.
--
-- Releases before this one sent certificates without announcing any
-- confirmWaitTime and kept those whose certConf never came, valid and in
-- use: a transaction left waiting by them is no certConf that failed to
-- come in time, and must not be revoked by the first sweep after the
-- upgrade. Those waiting longer than confirmWaitTime (10 minutes) at the
-- upgrade are closed as 'unconfirmed' (their certificates are kept; a
-- certConf for them is answered as for a closed transaction); younger ones
-- stay waiting, under the window like any new one.
--
-- SQLite cannot alter a CHECK constraint: the table is rebuilt with its
-- rows.
CREATE TABLE cmp_transactions_new (
    transaction_id TEXT    PRIMARY KEY,
    sender         TEXT    NOT NULL,
    serial         TEXT    NOT NULL,
    cert_hash      BLOB    NOT NULL,
    created_at     INTEGER NOT NULL,
    state          TEXT    NOT NULL CHECK (state IN ('waiting', 'confirmed', 'rejected', 'implicit', 'expiring', 'expired', 'unconfirmed')),
    closed_at      INTEGER
);
INSERT INTO cmp_transactions_new (transaction_id, sender, serial, cert_hash, created_at, state, closed_at)
    SELECT transaction_id, sender, serial, cert_hash, created_at, state, closed_at FROM cmp_transactions;
DROP TABLE cmp_transactions;
ALTER TABLE cmp_transactions_new RENAME TO cmp_transactions;

UPDATE cmp_transactions SET state = 'unconfirmed', closed_at = CAST(strftime('%s', 'now') AS INTEGER) * 1000000000
    WHERE state = 'waiting' AND created_at < (CAST(strftime('%s', 'now') AS INTEGER) - 600) * 1000000000;

CREATE INDEX cmp_transactions_created ON cmp_transactions (created_at);

CREATE INDEX cmp_transactions_open ON cmp_transactions (created_at) WHERE state IN ('waiting', 'expiring');
