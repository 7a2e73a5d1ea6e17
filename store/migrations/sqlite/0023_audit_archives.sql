-- Archived ranges of the audit log (thiqa audit archive): the oldest records
-- move to a verified archive file and leave audit_log. Each row names the
-- range, the hash of its last record (the first live record must chain from
-- it) and the file. state is 'deleting' while the range's rows are being
-- deleted, 'done' once they are gone. The delete trigger of audit_log now
-- lets through exactly the rows inside a range being deleted.
CREATE TABLE audit_archives (
    first_seq       INTEGER PRIMARY KEY CHECK (first_seq > 0),
    last_seq        INTEGER NOT NULL UNIQUE CHECK (last_seq >= first_seq),
    last_hash       BLOB    NOT NULL,
    file_name       TEXT    NOT NULL,
    file_sha256     BLOB    NOT NULL,
    created_unix_ns INTEGER NOT NULL,
    state           TEXT    NOT NULL CHECK (state IN ('deleting', 'done'))
);

DROP TRIGGER audit_log_no_delete;

CREATE TRIGGER audit_log_no_delete BEFORE DELETE ON audit_log
WHEN NOT EXISTS (SELECT 1 FROM audit_archives
                 WHERE state = 'deleting' AND OLD.seq BETWEEN first_seq AND last_seq)
BEGIN
    SELECT RAISE(ABORT, 'audit_log is append-only');
END;

CREATE TRIGGER audit_archives_no_delete BEFORE DELETE ON audit_archives
BEGIN
    SELECT RAISE(ABORT, 'audit_archives is append-only');
END;

-- The only change allowed: a range's deletion finishing.
CREATE TRIGGER audit_archives_no_update BEFORE UPDATE ON audit_archives
WHEN NOT (OLD.state = 'deleting' AND NEW.state = 'done'
          AND NEW.first_seq = OLD.first_seq AND NEW.last_seq = OLD.last_seq
          AND NEW.last_hash = OLD.last_hash AND NEW.file_name = OLD.file_name
          AND NEW.file_sha256 = OLD.file_sha256 AND NEW.created_unix_ns = OLD.created_unix_ns)
BEGIN
    SELECT RAISE(ABORT, 'audit_archives is append-only');
END;
