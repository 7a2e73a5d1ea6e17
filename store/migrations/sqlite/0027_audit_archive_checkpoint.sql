-- Each archived range keeps the signed checkpoint at its last record (the
-- line the archive file's header holds): audit verify checks its
-- signature with the checkpoint key, so a range row written by someone
-- without that key (to make records vanish) is a break, whichever
-- checkpoint file the verification reads (each node may keep its own, and
-- rotated files no longer hold old checkpoints). '' for the rows written
-- before this column: their end must be named by the checkpoint file.
ALTER TABLE audit_archives ADD COLUMN checkpoint_line TEXT NOT NULL DEFAULT '';

DROP TRIGGER audit_archives_no_update;

-- The only change allowed: a range's deletion finishing.
CREATE TRIGGER audit_archives_no_update BEFORE UPDATE ON audit_archives
WHEN NOT (OLD.state = 'deleting' AND NEW.state = 'done'
          AND NEW.first_seq = OLD.first_seq AND NEW.last_seq = OLD.last_seq
          AND NEW.last_hash = OLD.last_hash AND NEW.file_name = OLD.file_name
          AND NEW.file_sha256 = OLD.file_sha256 AND NEW.created_unix_ns = OLD.created_unix_ns
          AND NEW.checkpoint_line = OLD.checkpoint_line)
BEGIN
    SELECT RAISE(ABORT, 'audit_archives is append-only');
END;
