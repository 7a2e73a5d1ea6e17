-- The confirmation window of CMP (enrol.ConfirmWaitTime, RFC 9810
-- §5.1.1.2): a transaction whose client sent no certConf in time goes
-- waiting -> expiring (a server claimed it and is revoking its
-- certificate; closed_at is the claim's time, a stale claim is taken over)
-- -> expired (revoked, closed). The sweep finds the transactions still
-- open by the partial index; the purge never deletes them.
ALTER TABLE cmp_transactions DROP CONSTRAINT cmp_transactions_state_check;
ALTER TABLE cmp_transactions ADD CONSTRAINT cmp_transactions_state_check
    CHECK (state IN ('waiting', 'confirmed', 'rejected', 'implicit', 'expiring', 'expired'));

CREATE INDEX cmp_transactions_open ON cmp_transactions (created_at) WHERE state IN ('waiting', 'expiring');
