package store

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/thiqa/thiqa/ca"
	"github.com/thiqa/thiqa/enrol"
	"github.com/thiqa/thiqa/internal/audit"
)

// Enrolment records and CMP transactions (tables enrolments and
// cmp_transactions, migration 0012; purged in purge.go).
var (
	_ enrol.Store            = (*Enrolments)(nil)
	_ enrol.TransactionStore = (*Enrolments)(nil)
)

// Enrolments is the store of package enrol and of its CMP transactions.
type Enrolments struct{ db *DB }

// Enrolments returns the enrolment store.
func (db *DB) Enrolments() *Enrolments { return &Enrolments{db: db} }

// InsertEnrolment records a new enrolment with the audit records of seal
// (nil: none) in one transaction (enrol.Store). When the connection is
// lost while the server commits, the record tells whether it took effect
// (auditedTxSettled): taken, it answers nil, and the officer is given the
// secret of an enrolment that exists; not taken, the error.
func (s *Enrolments) InsertEnrolment(ctx context.Context, e enrol.Enrolment, seal audit.Sealer) error {
	subject, err := json.Marshal(e.Subject)
	if err != nil {
		return fmt.Errorf("store: enrolment subject: %w", err)
	}
	err = s.db.auditedTxSettled(ctx, func(t *txn, records *auditInTx) error {
		if _, err := t.exec(ctx, `INSERT INTO enrolments (reference, profile, subject, secret_hash, created_by, created_at, expires_at, state)
			VALUES (?, ?, ?, ?, ?, ?, ?, 'open')`,
			e.Reference, e.Profile, string(subject), e.SecretHash[:], e.CreatedBy, e.Created.UnixNano(), e.Expires.UnixNano()); err != nil {
			return err
		}
		if err := records.appendAudit(ctx, t, seal); err != nil {
			return fmt.Errorf("store: recording enrolment %s in the audit log: %w", e.Reference, err)
		}
		return nil
	})
	if isUniqueViolation(err) {
		return fmt.Errorf("store: enrolment %s: %w", e.Reference, enrol.ErrDuplicate)
	}
	return mapErr("store: recording an enrolment", err)
}

// GetEnrolment returns an enrolment (enrol.Store).
func (s *Enrolments) GetEnrolment(ctx context.Context, reference string) (*enrol.Enrolment, error) {
	var e enrol.Enrolment
	var subject string
	var hash []byte
	var created, expires int64
	var claim, serial sql.NullString
	var claimedAt, usedAt sql.NullInt64
	err := s.db.queryRow(ctx, `SELECT reference, profile, subject, secret_hash, created_by, created_at, expires_at, state, claim, claimed_at, serial, used_at
		FROM enrolments WHERE reference = ?`, reference).
		Scan(&e.Reference, &e.Profile, &subject, &hash, &e.CreatedBy, &created, &expires, &e.State, &claim, &claimedAt, &serial, &usedAt)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, fmt.Errorf("store: enrolment %s: %w: %w", reference, enrol.ErrNotFound, ErrNotFound)
	}
	if err != nil {
		return nil, mapErr("store: reading enrolment "+reference, err)
	}
	if err := json.Unmarshal([]byte(subject), &e.Subject); err != nil {
		return nil, fmt.Errorf("store: enrolment %s subject: %w", reference, err)
	}
	copy(e.SecretHash[:], hash)
	e.Created, e.Expires = time.Unix(0, created).UTC(), time.Unix(0, expires).UTC()
	e.Claim, e.Serial = claim.String, serial.String
	if claimedAt.Valid {
		e.ClaimedAt = time.Unix(0, claimedAt.Int64).UTC()
	}
	if usedAt.Valid {
		e.Used = time.Unix(0, usedAt.Int64).UTC()
	}
	if e.State == enrol.StateUsed && !serial.Valid {
		// A void enrolment is stored used without a certificate (see
		// VoidEnrolment), at the time of its void.
		e.State, e.Voided, e.Used = enrol.StateVoid, e.Used, time.Time{}
	}
	return &e, nil
}

// ClaimEnrolment claims an open (or stale claimed) unexpired enrolment
// (enrol.Store).
func (s *Enrolments) ClaimEnrolment(ctx context.Context, reference, claim string, now, stale time.Time) error {
	return s.db.writeTx(ctx, func(t *txn) error {
		res, err := t.exec(ctx, `UPDATE enrolments SET state = 'claimed', claim = ?, claimed_at = ?
			WHERE reference = ? AND expires_at > ? AND (state = 'open' OR (state = 'claimed' AND claimed_at < ?))`,
			claim, now.UnixNano(), reference, now.UnixNano(), stale.UnixNano())
		if err != nil {
			return mapErr("store: claiming enrolment "+reference, err)
		}
		if n, _ := res.RowsAffected(); n == 1 {
			return nil
		}
		var state string
		var expires int64
		var serial sql.NullString
		err = t.queryRow(ctx, `SELECT state, expires_at, serial FROM enrolments WHERE reference = ?`, reference).Scan(&state, &expires, &serial)
		switch {
		case errors.Is(err, sql.ErrNoRows):
			return fmt.Errorf("store: enrolment %s: %w", reference, enrol.ErrNotFound)
		case err != nil:
			return mapErr("store: claiming enrolment "+reference, err)
		case state == enrol.StateUsed && !serial.Valid:
			return fmt.Errorf("store: enrolment %s: %w", reference, enrol.ErrVoid)
		case state == enrol.StateUsed:
			return fmt.Errorf("store: enrolment %s: %w", reference, enrol.ErrUsed)
		case expires <= now.UnixNano():
			return fmt.Errorf("store: enrolment %s: %w", reference, enrol.ErrExpired)
		}
		return fmt.Errorf("store: enrolment %s: %w", reference, enrol.ErrBusy)
	})
}

// ReleaseEnrolment reopens an enrolment claimed by claim (enrol.Store).
func (s *Enrolments) ReleaseEnrolment(ctx context.Context, reference, claim string) error {
	return s.db.writeTx(ctx, func(t *txn) error {
		_, err := t.exec(ctx, `UPDATE enrolments SET state = 'open', claim = NULL, claimed_at = NULL
			WHERE reference = ? AND state = 'claimed' AND claim = ?`, reference, claim)
		return mapErr("store: releasing enrolment "+reference, err)
	})
}

// CompleteEnrolment marks an enrolment claimed by claim used, with the
// audit records of seal (nil: none) in the same transaction (enrol.Store).
// When the connection is lost while the server commits, the record tells
// whether it took effect (auditedTxSettled): taken, it answers nil, and
// the caller delivers the certificate of an enrolment now used, which a
// retry could not claim again; not taken, the error.
func (s *Enrolments) CompleteEnrolment(ctx context.Context, reference, claim, serial string, now time.Time, seal audit.Sealer) error {
	return s.db.auditedTxSettled(ctx, func(t *txn, records *auditInTx) error {
		res, err := t.exec(ctx, `UPDATE enrolments SET state = 'used', serial = ?, used_at = ?
			WHERE reference = ? AND state = 'claimed' AND claim = ?`, serial, now.UnixNano(), reference, claim)
		if err != nil {
			return mapErr("store: completing enrolment "+reference, err)
		}
		if n, _ := res.RowsAffected(); n != 1 {
			return fmt.Errorf("store: enrolment %s is not claimed by this request", reference)
		}
		if err := records.appendAudit(ctx, t, seal); err != nil {
			return fmt.Errorf("store: recording the use of enrolment %s in the audit log: %w", reference, err)
		}
		return nil
	})
}

// The statements of VoidEnrolment on the certificates under the
// enrolment's request ID (parameters: enrol.RequestID(reference), then
// the intent grace cutoff for voidAbandonSQL). Both read the unique index
// certificates_request_id, never the table.
const (
	voidAbandonSQL = `UPDATE certificates SET state = 'abandoned', request_id = NULL
	WHERE request_id = ? AND state = 'intent' AND created_at < ?`
	voidCheckSQL = `SELECT c.serial, c.state, c.created_at FROM certificates c WHERE c.request_id = ?
	AND (c.state = 'intent' OR (c.state = 'issued' AND NOT EXISTS (SELECT 1 FROM revocations r WHERE r.serial = c.serial)))`
)

// VoidEnrolment voids an open enrolment, or one claimed before stale,
// with the audit records of seal (nil: none) in the same transaction
// (enrol.Store). Without a state of its own in the schema (migration
// 0012's check allows open, claimed and used), a void enrolment is stored
// used without a certificate: used_at is the time of the void, serial
// NULL (every use records its serial), and its validity ends then; no
// claim takes it and the purge deletes it as a used one. GetEnrolment
// answers it as enrol.StateVoid. An enrolment with a certificate issued
// under its request ID (enrol.RequestID) and not revoked is not voided:
// enrol.ErrUsed; nor one with a certificate being issued under it (a
// request past its claim's timeout): enrol.ErrBusy. An intent under it
// older than intentGrace is abandoned with the void: it issues nothing.
func (s *Enrolments) VoidEnrolment(ctx context.Context, reference string, now, stale time.Time, seal audit.Sealer) error {
	return s.db.auditedTxSettled(ctx, func(t *txn, records *auditInTx) error {
		at := now.UnixNano()
		res, err := t.exec(ctx, `UPDATE enrolments SET state = 'used', serial = NULL, used_at = ?, claim = NULL, claimed_at = NULL,
			expires_at = CASE WHEN expires_at > ? THEN ? ELSE expires_at END
			WHERE reference = ? AND (state = 'open' OR (state = 'claimed' AND claimed_at < ?))`,
			at, at, at, reference, stale.UnixNano())
		if err != nil {
			return mapErr("store: voiding enrolment "+reference, err)
		}
		if n, _ := res.RowsAffected(); n != 1 {
			var state string
			var serial sql.NullString
			err := t.queryRow(ctx, `SELECT state, serial FROM enrolments WHERE reference = ?`, reference).Scan(&state, &serial)
			switch {
			case errors.Is(err, sql.ErrNoRows):
				return fmt.Errorf("store: enrolment %s: %w", reference, enrol.ErrNotFound)
			case err != nil:
				return mapErr("store: voiding enrolment "+reference, err)
			case state == enrol.StateUsed && !serial.Valid:
				return fmt.Errorf("store: enrolment %s: %w", reference, enrol.ErrVoid)
			case state == enrol.StateUsed:
				return fmt.Errorf("store: enrolment %s was used for certificate %s: %w", reference, serial.String, enrol.ErrUsed)
			}
			return fmt.Errorf("store: enrolment %s: %w", reference, enrol.ErrBusy)
		}
		// A certificate issued under the enrolment whose use could not be
		// recorded (enrol.Service.Enrol) leaves it open: it stands, valid,
		// with the enrolment's request ID. The void is refused (rolled
		// back) until that certificate is revoked. A live intent under
		// that request ID is a request still issuing under a stale claim:
		// refused as busy until it finishes or its intent is abandoned
		// (intentGrace).
		// An intent older than intentGrace is abandoned here, before the
		// check, in this transaction: its request, slower still, would
		// otherwise complete it (InsertCertificate completes any intent)
		// and issue a certificate under the void enrolment. On PostgreSQL
		// this UPDATE waits for an issuance completing it meanwhile, then
		// skips it; the check below then sees it issued.
		if _, err := t.exec(ctx, voidAbandonSQL,
			enrol.RequestID(reference), now.Add(-intentGrace).UnixNano()); err != nil {
			return mapErr("store: voiding enrolment "+reference, err)
		}
		var serial, state string
		var created int64
		err = t.queryRow(ctx, voidCheckSQL,
			enrol.RequestID(reference)).Scan(&serial, &state, &created)
		switch {
		case errors.Is(err, sql.ErrNoRows):
		case err != nil:
			return mapErr("store: voiding enrolment "+reference, err)
		case state == "issued":
			return fmt.Errorf("store: certificate %s was issued under enrolment %s: %w", serial, reference, enrol.ErrUsed)
		case created >= now.Add(-intentGrace).UnixNano():
			return fmt.Errorf("store: certificate %s is being issued under enrolment %s: %w", serial, reference, enrol.ErrBusy)
		}
		if err := records.appendAudit(ctx, t, seal); err != nil {
			return fmt.Errorf("store: recording the void of enrolment %s in the audit log: %w", reference, err)
		}
		return nil
	})
}

// intentUnderVoid abandons the intent in, just recorded, when its request
// ID is an enrolment's (enrol.RequestID) and that enrolment is void: its
// request held a claim that went stale, and the void, not seeing the
// intent yet, went through. Read after the intent's commit, and on
// PostgreSQL behind the row lock of a void under way (FOR SHARE): either
// the void's check sees the intent (and refuses, busy) or this sees the
// void.
func (s *Enrolments) intentUnderVoid(ctx context.Context, in ca.Intent) error {
	reference, ok := strings.CutPrefix(in.RequestID, enrol.RequestID(""))
	if !ok {
		return nil
	}
	lock := ""
	if s.db.dialect == DriverPostgres {
		lock = " FOR SHARE"
	}
	voided := false
	err := s.db.writeTx(ctx, func(t *txn) error {
		voided = false
		var state string
		var serial sql.NullString
		err := t.queryRow(ctx, `SELECT state, serial FROM enrolments WHERE reference = ?`+lock, reference).Scan(&state, &serial)
		switch {
		case errors.Is(err, sql.ErrNoRows):
			return nil // purged, or no enrolment's: the request ID guards it
		case err != nil:
			return mapErr("store: reading enrolment "+reference+" for intent "+in.Serial, err)
		case state != enrol.StateUsed || serial.Valid:
			return nil
		}
		if _, err := t.exec(ctx, `UPDATE certificates SET state = 'abandoned', request_id = NULL WHERE serial = ? AND state = 'intent'`, in.Serial); err != nil {
			return mapErr("store: abandoning intent "+in.Serial+" under void enrolment "+reference, err)
		}
		voided = true
		return nil
	})
	if err == nil && voided {
		err = fmt.Errorf("store: intent %s: enrolment %s: %w", in.Serial, reference, enrol.ErrVoid)
	}
	return err
}

// InsertTransaction records the certificate a CMP transaction issued
// (enrol.TransactionStore); enrol.ErrTransactionInUse when the ID exists.
func (s *Enrolments) InsertTransaction(ctx context.Context, tx enrol.Transaction) error {
	err := s.db.writeTx(ctx, func(t *txn) error {
		_, err := t.exec(ctx, `INSERT INTO cmp_transactions (transaction_id, sender, serial, cert_hash, created_at, state, closed_at)
			VALUES (?, ?, ?, ?, ?, ?, ?)`, tx.ID, tx.Sender, tx.Serial, tx.CertHash[:], tx.Created.UnixNano(), tx.State, nullTime(tx.Closed))
		return err
	})
	if isUniqueViolation(err) {
		return fmt.Errorf("store: CMP transaction %s: %w", tx.ID, enrol.ErrTransactionInUse)
	}
	return mapErr("store: recording a CMP transaction", err)
}

func nullTime(t time.Time) any {
	if t.IsZero() {
		return nil
	}
	return t.UnixNano()
}

// GetTransaction returns a CMP transaction (enrol.TransactionStore), an
// error wrapping enrol.ErrNoTransaction when there is none.
func (s *Enrolments) GetTransaction(ctx context.Context, id string) (*enrol.Transaction, error) {
	var tx enrol.Transaction
	var hash []byte
	var created int64
	var closed sql.NullInt64
	err := s.db.queryRow(ctx, `SELECT transaction_id, sender, serial, cert_hash, created_at, state, closed_at FROM cmp_transactions WHERE transaction_id = ?`, id).
		Scan(&tx.ID, &tx.Sender, &tx.Serial, &hash, &created, &tx.State, &closed)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, fmt.Errorf("store: CMP transaction %s: %w", id, enrol.ErrNoTransaction)
	}
	if err != nil {
		return nil, mapErr("store: reading CMP transaction "+id, err)
	}
	copy(tx.CertHash[:], hash)
	tx.Created = time.Unix(0, created).UTC()
	if closed.Valid {
		tx.Closed = time.Unix(0, closed.Int64).UTC()
	}
	return &tx, nil
}

// CloseTransaction moves a waiting transaction to state (confirmed,
// rejected, or expiring to claim it for revocation);
// enrol.ErrNoTransaction when it is not waiting.
func (s *Enrolments) CloseTransaction(ctx context.Context, id, state string, now time.Time) error {
	return s.db.writeTx(ctx, func(t *txn) error {
		res, err := t.exec(ctx, `UPDATE cmp_transactions SET state = ?, closed_at = ? WHERE transaction_id = ? AND state = 'waiting'`, state, now.UnixNano(), id)
		if err != nil {
			return mapErr("store: closing CMP transaction "+id, err)
		}
		if n, _ := res.RowsAffected(); n != 1 {
			return fmt.Errorf("store: CMP transaction %s is not waiting for a confirmation: %w", id, enrol.ErrNoTransaction)
		}
		return nil
	})
}

// ClaimUnconfirmed moves to expiring, at now, at most limit transactions
// waiting for a certConf since before cutoff or claimed before stale and
// never finished, and returns them (enrol.TransactionStore): the oldest
// first. On PostgreSQL a row another instance is claiming is skipped, and
// one it claimed meanwhile no longer matches, so each goes to one caller.
func (s *Enrolments) ClaimUnconfirmed(ctx context.Context, cutoff, stale, now time.Time, limit int) ([]enrol.Transaction, error) {
	if limit <= 0 {
		return nil, nil
	}
	pick := `SELECT transaction_id FROM cmp_transactions
		WHERE (state = 'waiting' AND created_at < ?) OR (state = 'expiring' AND closed_at < ?) ORDER BY created_at LIMIT ?`
	if s.db.dialect == DriverPostgres {
		pick += ` FOR UPDATE SKIP LOCKED`
	}
	var out []enrol.Transaction
	err := s.db.writeTx(ctx, func(t *txn) error {
		out = nil
		rows, err := t.query(ctx, `UPDATE cmp_transactions SET state = 'expiring', closed_at = ? WHERE transaction_id IN (`+pick+`)
			RETURNING transaction_id, sender, serial, cert_hash, created_at`, now.UnixNano(), cutoff.UnixNano(), stale.UnixNano(), limit)
		if err != nil {
			return err
		}
		defer rows.Close()
		for rows.Next() {
			tx := enrol.Transaction{State: "expiring", Closed: time.Unix(0, now.UnixNano()).UTC()}
			var hash []byte
			var created int64
			if err := rows.Scan(&tx.ID, &tx.Sender, &tx.Serial, &hash, &created); err != nil {
				return err
			}
			copy(tx.CertHash[:], hash)
			tx.Created = time.Unix(0, created).UTC()
			out = append(out, tx)
		}
		return rows.Err()
	})
	if err != nil {
		return nil, mapErr("store: claiming unconfirmed CMP transactions", err)
	}
	slices.SortFunc(out, func(a, b enrol.Transaction) int { return a.Created.Compare(b.Created) })
	return out, nil
}

// FinishExpired moves an expiring transaction to expired
// (enrol.TransactionStore); enrol.ErrNoTransaction when it is not
// expiring.
func (s *Enrolments) FinishExpired(ctx context.Context, id string, now time.Time) error {
	return s.db.writeTx(ctx, func(t *txn) error {
		res, err := t.exec(ctx, `UPDATE cmp_transactions SET state = 'expired', closed_at = ? WHERE transaction_id = ? AND state = 'expiring'`, now.UnixNano(), id)
		if err != nil {
			return mapErr("store: closing expired CMP transaction "+id, err)
		}
		if n, _ := res.RowsAffected(); n != 1 {
			return fmt.Errorf("store: CMP transaction %s is not expiring: %w", id, enrol.ErrNoTransaction)
		}
		return nil
	})
}

// ClaimFollowUps claims, at now, at most limit transactions whose
// certConf's follow-up is undone (rejecting, confirming) and was claimed
// before stale, and returns them (enrol.TransactionStore): the oldest
// claim first. On PostgreSQL a row another instance is claiming is
// skipped, and one it claimed meanwhile no longer matches, so each goes
// to one caller.
func (s *Enrolments) ClaimFollowUps(ctx context.Context, stale, now time.Time, limit int) ([]enrol.Transaction, error) {
	if limit <= 0 {
		return nil, nil
	}
	pick := `SELECT transaction_id FROM cmp_transactions
		WHERE state IN ('rejecting', 'confirming') AND closed_at < ? ORDER BY closed_at LIMIT ?`
	if s.db.dialect == DriverPostgres {
		pick += ` FOR UPDATE SKIP LOCKED`
	}
	var out []enrol.Transaction
	err := s.db.writeTx(ctx, func(t *txn) error {
		out = nil
		rows, err := t.query(ctx, `UPDATE cmp_transactions SET closed_at = ? WHERE transaction_id IN (`+pick+`)
			RETURNING transaction_id, sender, serial, cert_hash, created_at, state`, now.UnixNano(), stale.UnixNano(), limit)
		if err != nil {
			return err
		}
		defer rows.Close()
		for rows.Next() {
			tx := enrol.Transaction{Closed: time.Unix(0, now.UnixNano()).UTC()}
			var hash []byte
			var created int64
			if err := rows.Scan(&tx.ID, &tx.Sender, &tx.Serial, &hash, &created, &tx.State); err != nil {
				return err
			}
			copy(tx.CertHash[:], hash)
			tx.Created = time.Unix(0, created).UTC()
			out = append(out, tx)
		}
		return rows.Err()
	})
	if err != nil {
		return nil, mapErr("store: claiming the undone follow-ups of CMP confirmations", err)
	}
	slices.SortFunc(out, func(a, b enrol.Transaction) int { return a.Created.Compare(b.Created) })
	return out, nil
}

// FinishFollowUp records the follow-up of a certConf as done
// (enrol.TransactionStore): rejecting becomes rejected, confirming
// confirmed; enrol.ErrNoTransaction when it is in neither state.
func (s *Enrolments) FinishFollowUp(ctx context.Context, id string, now time.Time) error {
	return s.db.writeTx(ctx, func(t *txn) error {
		res, err := t.exec(ctx, `UPDATE cmp_transactions SET closed_at = ?,
			state = CASE state WHEN 'rejecting' THEN 'rejected' ELSE 'confirmed' END
			WHERE transaction_id = ? AND state IN ('rejecting', 'confirming')`, now.UnixNano(), id)
		if err != nil {
			return mapErr("store: finishing the follow-up of CMP transaction "+id, err)
		}
		if n, _ := res.RowsAffected(); n != 1 {
			return fmt.Errorf("store: CMP transaction %s has no follow-up undone: %w", id, enrol.ErrNoTransaction)
		}
		return nil
	})
}

// FailFollowUp records the follow-up of a certConf, or the revocation of
// an unconfirmed certificate, as failed for good (enrol.TransactionStore):
// rejecting, confirming or expiring becomes failed, which no sweep claims,
// and the records of seal (nil: none) are written in the same transaction;
// enrol.ErrNoTransaction, and no record, when it is in none of these
// states. When the connection is lost while the server commits, the
// record tells whether it took effect (auditedTxSettled): the caller then
// counts a follow-up given up, and answers its client so, exactly when it
// is; no sweep would take it again to do so later.
func (s *Enrolments) FailFollowUp(ctx context.Context, id string, now time.Time, seal audit.Sealer) error {
	return s.db.auditedTxSettled(ctx, func(t *txn, records *auditInTx) error {
		res, err := t.exec(ctx, `UPDATE cmp_transactions SET state = 'failed', closed_at = ?
			WHERE transaction_id = ? AND state IN ('rejecting', 'confirming', 'expiring')`, now.UnixNano(), id)
		if err != nil {
			return mapErr("store: recording the follow-up of CMP transaction "+id+" as failed", err)
		}
		if n, _ := res.RowsAffected(); n != 1 {
			return fmt.Errorf("store: CMP transaction %s has no follow-up undone: %w", id, enrol.ErrNoTransaction)
		}
		if err := records.appendAudit(ctx, t, seal); err != nil {
			return fmt.Errorf("store: recording the failed follow-up of CMP transaction %s in the audit log: %w", id, err)
		}
		return nil
	})
}
