-- A citizen's own activity (GET /api/v1/me/activity) lists the
-- certificates issued to the citizen on every page view. holder_civil is
-- the civil number their subject's serialNumber names (IDCxx-<civil>,
-- auth.CivilNumber), '' when it names none, written with the certificate;
-- the index makes "a citizen's certificates, newest first, at most n" a
-- lookup instead of a scan of every certificate's subject.
--
-- NULL: not yet computed. Certificates issued before this migration are
-- filled in Go after Open (SQL cannot parse DER), in batches; until then
-- the reader also checks the NULL rows, found through the same index.
ALTER TABLE certificates ADD COLUMN holder_civil TEXT;

CREATE INDEX certificates_holder ON certificates (holder_civil, issued_at);
