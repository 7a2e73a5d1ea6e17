-- `thiqa audit find --since S --until U` (no object, actor or action) had
-- no index to read: it walked the log from its newest (or oldest) record
-- until the limit matched, the whole log for a window in the past. With
-- this index a time-bounded search first reads the seqs of the records in
-- the window (an index-only range read, as long as the window), then the
-- log between the lowest and the highest of them (store/audit_find.go).
-- It costs every append one more index entry (docs/benchmarks.md).
CREATE INDEX audit_log_at ON audit_log (at_unix_ns, seq);
