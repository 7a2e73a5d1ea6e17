-- `thiqa audit find --action A` reads the records of an action newest
-- first: without an index it reads every record newer than the limit-th
-- match, the whole log for a rare action (1 million records: 0.7-2 s,
-- growing with the log). This index keeps it a lookup, as
-- audit_log_object and audit_log_actor do for objects and actors. It
-- costs every append one more index entry (docs/benchmarks.md).
CREATE INDEX audit_log_action ON audit_log (action, seq);
