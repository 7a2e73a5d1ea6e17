-- A certConf's follow-up (or the revocation of an unconfirmed certificate)
-- that fails for good ends 'failed' (package enrol/cmp). Until this, a
-- 'rejecting', 'confirming' or 'expiring' transaction whose follow-up was
-- refused for a reason no retry can change (its certificate unknown, a
-- key update that cannot be withdrawn) was claimed again every 5 minutes
-- for ever, and nobody was told. Now it moves to 'failed', with its
-- cmp.followup.failed audit record, and is no longer retried: an operator
-- revokes the certificate by hand (docs/operations.md). The purge deletes
-- a failed transaction like any closed one; the audit record stays.
ALTER TABLE cmp_transactions DROP CONSTRAINT cmp_transactions_state_check;
ALTER TABLE cmp_transactions ADD CONSTRAINT cmp_transactions_state_check
    CHECK (state IN ('waiting', 'confirmed', 'rejected', 'implicit', 'expiring', 'expired', 'unconfirmed', 'rejecting', 'confirming', 'failed'));
