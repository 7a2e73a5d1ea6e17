-- A range still being deleted whose archive file was lost (thiqa audit
-- archive --file-lost): the records of the range still live are written to
-- a new file, which replaces the lost one from record replaced_from on,
-- and the range is finished with it. replaced_from is 0 until then;
-- records first_seq to replaced_from-1 were deleted and are lost with the
-- file the row names. replacement_file is '' when nothing of the range was
-- live any more (replaced_from = last_seq + 1).
ALTER TABLE audit_archives ADD COLUMN replaced_from INTEGER NOT NULL DEFAULT 0;
ALTER TABLE audit_archives ADD COLUMN replacement_file TEXT NOT NULL DEFAULT '';
ALTER TABLE audit_archives ADD COLUMN replacement_sha256 BLOB NOT NULL DEFAULT X'';

DROP TRIGGER audit_archives_no_update;

-- The only changes allowed: a range being deleted gets its replacement,
-- once; a range's deletion finishing.
CREATE TRIGGER audit_archives_no_update BEFORE UPDATE ON audit_archives
WHEN NOT (OLD.state = 'deleting'
          AND NEW.first_seq = OLD.first_seq AND NEW.last_seq = OLD.last_seq
          AND NEW.last_hash = OLD.last_hash AND NEW.file_name = OLD.file_name
          AND NEW.file_sha256 = OLD.file_sha256 AND NEW.created_unix_ns = OLD.created_unix_ns
          AND NEW.checkpoint_line = OLD.checkpoint_line
          AND ((NEW.state = 'done'
                AND NEW.replaced_from = OLD.replaced_from AND NEW.replacement_file = OLD.replacement_file
                AND NEW.replacement_sha256 = OLD.replacement_sha256)
            OR (NEW.state = 'deleting' AND OLD.replaced_from = 0
                AND NEW.replaced_from BETWEEN OLD.first_seq AND OLD.last_seq + 1)))
BEGIN
    SELECT RAISE(ABORT, 'audit_archives is append-only');
END;
