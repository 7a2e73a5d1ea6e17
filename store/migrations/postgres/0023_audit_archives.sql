-- Archived ranges of the audit log (thiqa audit archive): the oldest records
-- move to a verified archive file and leave audit_log. Each row names the
-- range, the hash of its last record (the first live record must chain from
-- it) and the file. state is 'deleting' while the range's rows are being
-- deleted, 'done' once they are gone. The trigger of audit_log now lets
-- through the deletion of exactly the rows inside a range being deleted.
CREATE TABLE audit_archives (
    first_seq       BIGINT PRIMARY KEY CHECK (first_seq > 0),
    last_seq        BIGINT NOT NULL UNIQUE CHECK (last_seq >= first_seq),
    last_hash       BYTEA  NOT NULL,
    file_name       TEXT   NOT NULL,
    file_sha256     BYTEA  NOT NULL,
    created_unix_ns BIGINT NOT NULL,
    state           TEXT   NOT NULL CHECK (state IN ('deleting', 'done'))
);

CREATE FUNCTION audit_log_refuse_change() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'DELETE' AND EXISTS (SELECT 1 FROM audit_archives
            WHERE state = 'deleting' AND OLD.seq BETWEEN first_seq AND last_seq) THEN
        RETURN OLD;
    END IF;
    RAISE EXCEPTION '% is append-only', TG_TABLE_NAME;
END
$$;

DROP TRIGGER audit_log_no_update ON audit_log;

CREATE TRIGGER audit_log_no_update BEFORE UPDATE OR DELETE ON audit_log
    FOR EACH ROW EXECUTE FUNCTION audit_log_refuse_change();

-- The only change allowed: a range's deletion finishing.
CREATE FUNCTION audit_archives_refuse_change() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'UPDATE' AND OLD.state = 'deleting' AND NEW.state = 'done'
            AND NEW.first_seq = OLD.first_seq AND NEW.last_seq = OLD.last_seq
            AND NEW.last_hash = OLD.last_hash AND NEW.file_name = OLD.file_name
            AND NEW.file_sha256 = OLD.file_sha256 AND NEW.created_unix_ns = OLD.created_unix_ns THEN
        RETURN NEW;
    END IF;
    RAISE EXCEPTION '% is append-only', TG_TABLE_NAME;
END
$$;

CREATE TRIGGER audit_archives_no_change BEFORE UPDATE OR DELETE ON audit_archives
    FOR EACH ROW EXECUTE FUNCTION audit_archives_refuse_change();

CREATE TRIGGER audit_archives_no_truncate BEFORE TRUNCATE ON audit_archives
    FOR EACH STATEMENT EXECUTE FUNCTION audit_refuse_change();
