-- A citizen's own activity (GET /api/v1/me/activity) reads the records a
-- citizen made (logins, signatures, PIN changes) by actor, newest first:
-- an index keeps that a lookup, as audit_log_object does for objects.
CREATE INDEX audit_log_actor ON audit_log (actor, seq);
