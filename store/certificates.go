package store

import (
	"context"
	"crypto/sha256"
	"crypto/x509"
	"database/sql"
	"errors"
	"fmt"
	"math/big"
	"strings"
	"time"

	"github.com/jackc/pgx/v5/pgconn"

	"github.com/thiqa/thiqa/ca"
	"github.com/thiqa/thiqa/internal/audit"
)

// The certificate store implements the CA's persistence.
var _ ca.Store = (*Certificates)(nil)

// intentGrace is how long an intent (serial reserved, not yet signed) keeps
// its subject key reserved for its profile. An issuance takes milliseconds;
// an intent older than this was abandoned (the signing failed or the process
// died) and no longer stops the same key from being certified again.
const intentGrace = 5 * time.Minute

// Certificates is the CA's store (ca.Store) over the certificates table.
type Certificates struct {
	db         *DB
	partitions func(ca string) int
	w          *certWriter
}

// Certificates returns the CA's store. Each certificate records the CRL
// partition the CA chose for it (ca.CertificateRecord.CRLPartition, the
// one its distribution point names). partitions, when not nil, gives the
// number of CRL partitions of an issuing CA (crl.Settings.Partitions), and
// a certificate naming a partition beyond it is refused: no CRL would list
// it. nil checks nothing (readers, `thiqa revoke`).
func (db *DB) Certificates(partitions func(ca string) int) *Certificates {
	return &Certificates{db: db, partitions: partitions, w: &certWriter{db: db}}
}

// nullString stores "" as NULL.
func nullString(s string) any {
	if s == "" {
		return nil
	}
	return s
}

// InsertIntent reserves the serial and records the linted TBS hash. It
// returns an error wrapping ca.ErrDuplicateSerial when the serial is taken,
// and ca.ErrDuplicateRequest when the request ID was used before or the key
// is already certified (or being certified) for the profile. An intent
// under an enrolment's request ID (enrol.RequestID) that finds the
// enrolment void is abandoned: an error wrapping enrol.ErrVoid.
func (c *Certificates) InsertIntent(ctx context.Context, in ca.Intent) error {
	if err := c.insertIntent(ctx, in); err != nil {
		return err
	}
	return c.db.Enrolments().intentUnderVoid(ctx, in)
}

func (c *Certificates) insertIntent(ctx context.Context, in ca.Intent) error {
	if in.Serial == "" || in.CA == "" || in.Profile == "" {
		return errors.New("store: intent needs serial, CA and profile")
	}
	created := in.Created
	if created.IsZero() {
		created = time.Now()
	}
	args := []any{in.Serial, in.CA, in.Profile, in.TBSHash[:], in.KeyHash[:], nullString(in.RequestID), in.RequestedBy,
		in.NotAfter.Unix(), created.UnixNano(), nullString(in.Subject), nullString(in.Replaces), nullString(in.KeyLabel),
		renewalCompletedAt(in, created), in.KeyHash[:], in.Subject}
	otherSubject := fmt.Errorf("store: recording intent %s: %w", in.Serial, ca.ErrKeyOtherSubject)
	insert := func(t *txn) error {
		res, err := t.exec(ctx, insertIntentSQL(c.db.dialect), args...)
		if err != nil {
			return err
		}
		if n, err := res.RowsAffected(); err != nil {
			return err
		} else if n == 0 {
			return otherSubject
		}
		return nil
	}
	n, err := c.w.insertIntentRow(ctx, args)
	if err == nil && n == 0 {
		return otherSubject
	}
	if err == nil {
		return nil
	}
	// The key, the replaced certificate or the request ID is taken: by an
	// issued certificate, a live intent, or an intent abandoned long ago
	// (its signing failed, or its process died before it stored the
	// certificate), which is released and the insert retried. Each
	// release frees one of the three; a retry may find the next taken.
	for range 3 {
		kind := classifyConflict(err)
		release, releaseArgs, taken := staleRelease(kind, in)
		if release == "" {
			return conflictErr(kind, err)
		}
		n, rerr := c.db.execOne(ctx, release, append(releaseArgs, created.Add(-intentGrace).UnixNano())...)
		if rerr != nil {
			return mapErr("store: releasing an abandoned intent", rerr)
		}
		if n == 0 {
			return taken
		}
		err = c.db.writeTx(ctx, insert)
		if err == nil || errors.Is(err, ca.ErrKeyOtherSubject) {
			return err
		}
	}
	return conflictErr(classifyConflict(err), err)
}

// staleRelease returns the statement that releases what an intent left
// abandoned holds and in needs (kind: its key for its profile, the
// certificate it replaces, its request ID), its arguments before the
// grace cutoff, and the error when nothing was released (it is taken for
// good, or by a live intent); "" when kind is no such conflict. An intent
// released is marked abandoned and its request ID freed: it is never
// completed (InsertCertificate completes only an intent), and its serial
// stays reserved. A request ID is also freed from an intent abandoned
// before (by a key compromise, or by a release before abandoned intents
// freed their request IDs).
func staleRelease(kind conflict, in ca.Intent) (string, []any, error) {
	switch kind {
	case conflictKey:
		return `UPDATE certificates SET state = 'abandoned', request_id = NULL
	WHERE profile = ? AND key_hash = ? AND replaces IS NULL AND state = 'intent' AND created_at < ?`, []any{in.Profile, in.KeyHash[:]},
			fmt.Errorf("store: recording intent %s: %w: key already certified for profile %s", in.Serial, ca.ErrDuplicateRequest, in.Profile)
	case conflictReplaces:
		return `UPDATE certificates SET state = 'abandoned', request_id = NULL
	WHERE replaces = ? AND state = 'intent' AND created_at < ?`, []any{in.Replaces},
			fmt.Errorf("store: recording intent %s: %w: certificate %s is replaced already, or being replaced", in.Serial, ca.ErrDuplicateRequest, in.Replaces)
	case conflictRequest:
		if in.RequestID == "" {
			return "", nil, nil
		}
		return `UPDATE certificates SET state = 'abandoned', request_id = NULL
	WHERE request_id = ? AND (state = 'abandoned' OR (state = 'intent' AND created_at < ?))`, []any{in.RequestID},
			fmt.Errorf("store: recording intent %s: %w: request ID already used", in.Serial, ca.ErrDuplicateRequest)
	}
	return "", nil, nil
}

// renewalCompletedAt is what an intent records in renewal_completed_at:
// its creation for a renewal that keeps the replaced certificate until its
// confirmation (nothing for the renewal sweep to complete, ever), else
// NULL (the renewal completes after its issuance).
func renewalCompletedAt(in ca.Intent, created time.Time) sql.NullInt64 {
	if in.KeepsReplaced && in.Replaces != "" {
		return sql.NullInt64{Int64: created.UnixNano(), Valid: true}
	}
	return sql.NullInt64{}
}

type conflict int

const (
	conflictNone conflict = iota
	conflictSerial
	conflictRequest
	conflictKey
	conflictReplaces
)

// classifyConflict tells which unique constraint of the certificates table
// err violates (PostgreSQL names the index; SQLite names its columns).
func classifyConflict(err error) conflict {
	if !isUniqueViolation(err) {
		return conflictNone
	}
	var pe *pgconn.PgError
	if errors.As(err, &pe) {
		switch pe.ConstraintName {
		case "certificates_pkey":
			return conflictSerial
		case "certificates_request_id":
			return conflictRequest
		case "certificates_profile_key":
			return conflictKey
		case "certificates_replaces":
			return conflictReplaces
		}
		return conflictNone
	}
	msg := err.Error()
	switch {
	case strings.Contains(msg, "certificates.serial"):
		return conflictSerial
	case strings.Contains(msg, "certificates.request_id"):
		return conflictRequest
	case strings.Contains(msg, "certificates.key_hash"):
		return conflictKey
	case strings.Contains(msg, "certificates.replaces"):
		return conflictReplaces
	}
	return conflictNone
}

// conflictErr maps a classified failure to the CA's sentinel errors.
func conflictErr(kind conflict, err error) error {
	switch kind {
	case conflictSerial:
		return fmt.Errorf("store: recording intent: %w", ca.ErrDuplicateSerial)
	case conflictRequest:
		return fmt.Errorf("store: recording intent: %w: request ID already used", ca.ErrDuplicateRequest)
	case conflictKey:
		return fmt.Errorf("store: recording intent: %w: key already certified for this profile", ca.ErrDuplicateRequest)
	case conflictReplaces:
		return fmt.Errorf("store: recording intent: %w: the certificate is replaced already", ca.ErrDuplicateRequest)
	}
	return mapErr("store: recording intent", err)
}

// InsertCertificate completes a recorded intent with the signed
// certificate. It refuses a certificate whose TBSCertificate is not the one
// recorded in the intent, or whose intent does not exist or is not pending,
// and one whose key is blocked (an error wrapping ca.ErrKeyBlocked). The
// audit records of seal (nil: none) are committed in the same transaction
// as the certificate: an error sealing or appending them leaves the intent
// pending and the certificate unissued.
func (c *Certificates) InsertCertificate(ctx context.Context, rec ca.CertificateRecord, seal audit.Sealer) error {
	cert, err := x509.ParseCertificate(rec.DER)
	if err != nil {
		return fmt.Errorf("store: certificate %s: %w", rec.Serial, err)
	}
	serial, ok := new(big.Int).SetString(rec.Serial, 16)
	if !ok || serial.Cmp(cert.SerialNumber) != 0 {
		return fmt.Errorf("store: certificate serial %x does not match record %s", cert.SerialNumber, rec.Serial)
	}
	tbs := sha256.Sum256(cert.RawTBSCertificate)
	part := rec.CRLPartition
	if part < 0 || (c.partitions != nil && part > c.partitions(rec.CA)) || (c.partitions != nil && c.partitions(rec.CA) <= 1 && part != 0) {
		return fmt.Errorf("store: certificate %s names CRL partition %d, which CA %s does not publish", rec.Serial, part, rec.CA)
	}
	n, err := c.w.issueCertificate(ctx, []any{
		rec.DER, cert.Subject.String(), rec.NotBefore.Unix(), rec.NotAfter.Unix(), nullString(rec.CredentialID), part,
		time.Now().UnixNano(), holderCivil(cert), rec.Serial, tbs[:], rec.CA, rec.Profile}, seal)
	if err != nil {
		// Nothing of it was committed (its audit record could not be
		// written, say): the request fails and may be sent again at once,
		// which its intent, left pending, would refuse for five minutes
		// (the key taken, the renewed certificate shown as renewed by it)
		// and, holding its request ID, for ever (an enrolment's retry,
		// under enrolment:<reference>, or a client's with the same
		// idempotency key). A certificate committed after all is issued,
		// and left so (the intent state is the guard; on PostgreSQL the
		// UPDATE waits for a commit still under way).
		if _, aerr := c.db.execOne(context.WithoutCancel(ctx), `UPDATE certificates SET state = 'abandoned', request_id = NULL WHERE serial = ? AND state = 'intent'`, rec.Serial); aerr != nil {
			c.db.logger.Warn("store: abandoning the intent of a certificate not stored", "serial", rec.Serial, "err", aerr)
		}
		return mapErr("store: storing certificate "+rec.Serial, err)
	}
	if n != 1 {
		if err := c.keyBlockedError(ctx, rec.Serial); err != nil {
			return err
		}
		return fmt.Errorf("store: certificate %s has no pending intent with that TBSCertificate, CA and profile", rec.Serial)
	}
	return nil
}

// execOne runs one write statement on its own (autocommit: one round trip
// on PostgreSQL instead of BEGIN, statement, COMMIT), retrying retryable
// failures like writeTx, and returns the number of rows it changed. A
// statement whose connection was lost may have been committed: it is not
// run again, and the error wraps ErrOutcomeUnknown (the caller can look).
func (db *DB) execOne(ctx context.Context, q string, args ...any) (int64, error) {
	q = db.rebind(q)
	for attempt := 1; ; attempt++ {
		res, err := db.w.ExecContext(ctx, q, args...)
		if err == nil {
			return res.RowsAffected()
		}
		if isConnLost(err) {
			return 0, unavailable(fmt.Errorf("%w: %w", ErrOutcomeUnknown, err))
		}
		if !isRetryable(err) || attempt == maxTxAttempts || ctx.Err() != nil {
			db.noteWrite(err)
			return 0, unavailable(err)
		}
		time.Sleep(time.Duration(attempt*attempt) * 5 * time.Millisecond)
	}
}

// execOneSettled runs execOne, and when the connection was lost during the
// statement looks whether it took effect (done: the row is in the state
// the statement leaves it in, counted as the one row changed) and runs it
// again when it did not, a few times.
func (db *DB) execOneSettled(ctx context.Context, done string, doneArgs []any, q string, args ...any) (int64, error) {
	for attempt := 1; ; attempt++ {
		n, err := db.execOne(ctx, q, args...)
		if !errors.Is(err, ErrOutcomeUnknown) {
			return n, err
		}
		var one int
		rerr := db.queryRow(ctx, done, doneArgs...).Scan(&one)
		switch {
		case rerr == nil:
			return 1, nil
		case !errors.Is(rerr, sql.ErrNoRows):
			return 0, fmt.Errorf("%w (and looking: %w)", err, rerr)
		case attempt == maxTxAttempts || !db.pauseAfterConnLost(ctx, attempt, err):
			return 0, err
		}
	}
}

// certSelect reads an issued certificate with its revocation (table
// revocations, migration 0003), in scanCertificate's order.
const certSelect = `SELECT c.serial, c.ca, c.profile, c.der, c.key_hash, c.request_id, c.credential_id, c.requested_by,
	c.not_before, c.not_after, r.revoked_at, r.reason, b.serial, c.replaces, COALESCE(c.key_label, c.credential_id)
	FROM certificates c LEFT JOIN revocations r ON r.serial = c.serial
	LEFT JOIN blocked_keys b ON b.key_hash = c.key_hash`

// GetCertificate returns the issued certificate with that serial (lower-case
// hex) or an error wrapping ca.ErrNotFound, with its revocation if any and
// whether its key is blocked.
func (c *Certificates) GetCertificate(ctx context.Context, serial string) (*ca.CertificateRecord, error) {
	row := c.db.queryRow(ctx, certSelect+` WHERE c.serial = ? AND c.state = 'issued'`, strings.ToLower(serial))
	rec, err := scanCertificate(row)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, fmt.Errorf("store: certificate %s: %w", serial, ca.ErrNotFound)
	}
	if err != nil {
		return nil, mapErr("store: reading certificate "+serial, err)
	}
	return rec, nil
}

// CertificateByCredential returns the current certificate of a credential
// on the service's token (its credential ID): the newest issued for it, as
// renewal and re-key keep the ID. ca.ErrNotFound when there is none.
func (c *Certificates) CertificateByCredential(ctx context.Context, credentialID string) (*ca.CertificateRecord, error) {
	row := c.db.queryRow(ctx, certSelect+` WHERE c.credential_id = ? AND c.state = 'issued' ORDER BY c.issued_at DESC, c.serial LIMIT 1`, credentialID)
	rec, err := scanCertificate(row)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, fmt.Errorf("store: credential %s: %w", credentialID, ca.ErrNotFound)
	}
	if err != nil {
		return nil, mapErr("store: reading credential "+credentialID, err)
	}
	return rec, nil
}

func scanCertificate(row interface{ Scan(...any) error }) (*ca.CertificateRecord, error) {
	var rec ca.CertificateRecord
	var keyHash []byte
	var reqID, credID, blockedBy, replaces, keyLabel sql.NullString
	var nb, na, revokedAt, reason sql.NullInt64
	if err := row.Scan(&rec.Serial, &rec.CA, &rec.Profile, &rec.DER, &keyHash, &reqID, &credID, &rec.RequestedBy, &nb, &na, &revokedAt, &reason, &blockedBy,
		&replaces, &keyLabel); err != nil {
		return nil, err
	}
	rec.Replaces, rec.KeyLabel = replaces.String, keyLabel.String
	rec.KeyBlocked = blockedBy.Valid
	if revokedAt.Valid {
		rec.Revoked, rec.RevokedAt, rec.RevocationReason = true, time.Unix(0, revokedAt.Int64).UTC(), int(reason.Int64)
	}
	if len(keyHash) != len(rec.KeyHash) {
		return nil, fmt.Errorf("store: certificate %s: key hash of %d bytes", rec.Serial, len(keyHash))
	}
	copy(rec.KeyHash[:], keyHash)
	rec.RequestID, rec.CredentialID = reqID.String, credID.String
	rec.NotBefore, rec.NotAfter = time.Unix(nb.Int64, 0).UTC(), time.Unix(na.Int64, 0).UTC()
	return &rec, nil
}

// FindIssued returns the serial of an issued, unexpired certificate of that
// profile for that key (SPKI SHA-256), or "" when there is none. A revoked
// certificate counts too: a new issuance never certifies its key again for
// the profile (the unique index refuses it anyway; a renewal does), and
// naming the serial says why.
func (c *Certificates) FindIssued(ctx context.Context, profile string, keyHash [32]byte, now time.Time) (string, error) {
	var serial string
	row, err := c.w.findIssuedRow(ctx, keyHash[:], profile, now.Unix())
	if err == nil {
		err = row.Scan(&serial)
	}
	if errors.Is(err, sql.ErrNoRows) {
		return "", nil
	}
	if err != nil {
		return "", mapErr("store: looking up issued certificates", err)
	}
	return serial, nil
}
