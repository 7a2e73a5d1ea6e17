-- The purge of finished enrolments and CMP transactions (enrol.Purge,
-- every minute on every instance) finds its rows by these, without
-- reading the tables: enrolments expired, or used, before the cutoff, and
-- transactions created before it. The enrolments and cmp_transactions of
-- 0012 are no longer kept for ever: see enrol.EnrolmentRetention and
-- enrol.TransactionRetention.
CREATE INDEX enrolments_expires ON enrolments (expires_at);

CREATE INDEX enrolments_used ON enrolments (used_at) WHERE state = 'used';

CREATE INDEX cmp_transactions_created ON cmp_transactions (created_at);
