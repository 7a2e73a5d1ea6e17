-- A certificate's audit trail (GET /api/v1/certificates/{serial}/audit)
-- reads the records by object: an index keeps that a lookup.
CREATE INDEX audit_log_object ON audit_log (object, seq);
