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
ALTER TABLE cmp_transactions DROP CONSTRAINT cmp_transactions_state_check;
ALTER TABLE cmp_transactions ADD CONSTRAINT cmp_transactions_state_check
    CHECK (state IN ('waiting', 'confirmed', 'rejected', 'implicit', 'expiring', 'expired', 'unconfirmed'));

UPDATE cmp_transactions SET state = 'unconfirmed', closed_at = (extract(epoch FROM now()) * 1000000000)::bigint
    WHERE state = 'waiting' AND created_at < ((extract(epoch FROM now()) - 600) * 1000000000)::bigint;

CREATE INDEX cmp_transactions_open ON cmp_transactions (created_at) WHERE state IN ('waiting', 'expiring');
