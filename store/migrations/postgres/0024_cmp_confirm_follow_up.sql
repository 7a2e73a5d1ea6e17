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
ALTER TABLE cmp_transactions DROP CONSTRAINT cmp_transactions_state_check;
ALTER TABLE cmp_transactions ADD CONSTRAINT cmp_transactions_state_check
    CHECK (state IN ('waiting', 'confirmed', 'rejected', 'implicit', 'expiring', 'expired', 'unconfirmed', 'rejecting', 'confirming'));

CREATE INDEX cmp_transactions_follow_up ON cmp_transactions (closed_at) WHERE state IN ('rejecting', 'confirming');
