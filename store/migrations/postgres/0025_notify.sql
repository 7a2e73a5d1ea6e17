-- Notifications to citizens (package notify): the audit log is tailed and
-- what concerns a citizen is POSTed to the government's notification
-- gateway. One row per notifier ('audit'): the cursor is the seq of the
-- last audit record dealt with (delivered, refused for good, or nothing to
-- tell); holder and lease_until (Unix ns) are the lease of the one node of
-- a cluster that delivers at a time. A node takes the lease over only once
-- it lapsed. The first claim starts the cursor at the audit head: what
-- happened before notifications were turned on is not told.
CREATE TABLE notify_state (
    name        TEXT    PRIMARY KEY,
    cursor_seq  BIGINT NOT NULL CHECK (cursor_seq >= 0),
    holder      TEXT    NOT NULL,
    lease_until BIGINT NOT NULL
);

-- The expiry reminders sent: one per certificate and window ("720h",
-- "168h"), so that each is sent once across restarts and nodes.
CREATE TABLE notify_reminders (
    serial      TEXT    NOT NULL,
    window_name TEXT    NOT NULL,
    sent_at     BIGINT NOT NULL,
    PRIMARY KEY (serial, window_name)
);
