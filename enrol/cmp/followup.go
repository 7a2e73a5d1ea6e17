package cmp

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"time"

	"github.com/thiqa/thiqa/ca"
	"github.com/thiqa/thiqa/ca/revocation"
	"github.com/thiqa/thiqa/enrol"
	"github.com/thiqa/thiqa/internal/audit"
	"github.com/thiqa/thiqa/internal/outage"
)

// What a certConf leaves to do, and what is done when it cannot be done at
// once.
//
// A rejection revokes the rejected certificate and withdraws the key
// update it was; the confirmation of a key update without implicit
// confirmation supersedes the certificate it replaced. Either may fail
// (the database or the HSM unreachable for a moment), after the
// transaction was closed: it stays "rejecting" or "confirming" until the
// follow-up is done, and RetryFollowUps, in the sweep every node runs each
// minute, takes over those left so for enrol.ExpiryLease (the certConf's
// own attempt, or a retry that failed or whose server stopped) and does it
// again, each step idempotent, until it is done.
//
// A certificate issued without implicit confirmation whose transaction
// could not be recorded could never be confirmed, and the sweep would never
// find it: certified handles it as rejected at once (unrecorded).
//
// A follow-up refused for a reason no retry can change (permanentFailure:
// its certificate unknown, a key update that cannot be withdrawn) is
// given up instead (giveUp): the transaction ends "failed", the audit log
// gets cmp.followup.failed (in the store transaction that records the
// state, so once however often the database fails before) and
// thiqa_cmp_followup_failed_total counts it, for an operator to revoke the
// certificate by hand; a certConf for it, the one that gave it up or any
// later, is answered systemFailure (errConfirmGivenUp), never pkiConf or
// certConfirmed. Anything else (the database or the HSM down, a timeout)
// is retried as before.

// unrecordedTimeout bounds the handling of a certificate whose transaction
// could not be recorded (unrecorded): recording the claim, revoking,
// withdrawing, auditing. It is shorter than the HTTP server's write
// timeout, so that the client still gets the answer.
const unrecordedTimeout = 30 * time.Second

// settledState is the state a transaction has once the follow-up of its
// certConf is done.
func settledState(state string) string {
	switch state {
	case "rejecting":
		return "rejected"
	case "confirming":
		return "confirmed"
	}
	return state
}

// followUp does what the certConf that closed tx decided (tx.State
// "rejecting" or "confirming"), as actor, and records in details what it
// did or what failed; each step is idempotent, so that a retry after a
// failure, or after it was done but not recorded so, does no harm.
func (s *Server) followUp(ctx context.Context, actor string, tx enrol.Transaction, details map[string]any) error {
	switch tx.State {
	case "rejecting":
		if err := s.revokeUnwanted(ctx, actor, tx.Serial, details); err != nil {
			return fmt.Errorf("cmp: rejected certificate %s (transaction %s): %w", tx.Serial, tx.ID, err)
		}
	case "confirming":
		if err := s.supersedeReplaced(ctx, actor, tx.Serial, details); err != nil {
			return fmt.Errorf("cmp: confirmed key update %s (transaction %s): %w", tx.Serial, tx.ID, err)
		}
	}
	return nil
}

// revokeUnwanted revokes the certificate serial, which its client rejected
// or can no longer confirm (cessationOfOperation, through the revocation
// service: CRLs, OCSP and its audit record follow), and withdraws the key
// update it was (the certificate it replaced stays valid, and renewable).
// A certificate revoked already (by its holder, an officer, or an earlier
// attempt) stays as it is. details get whether it was still to revoke and
// what it replaced, or the error (revokeError, withdrawError).
func (s *Server) revokeUnwanted(ctx context.Context, actor, serial string, details map[string]any) error {
	_, err := s.c.Revoker.Revoke(ctx, actor, serial, "cessationOfOperation", nil)
	already := errors.Is(err, revocation.ErrAlreadyRevoked)
	if err != nil && !already {
		details["revokeError"] = err.Error()
		return fmt.Errorf("revoking: %w", err)
	}
	delete(details, "revokeError")
	details["revoked"] = !already
	old, err := s.c.Enrol.WithdrawRejected(ctx, serial)
	if err != nil {
		details["withdrawError"] = err.Error()
		return fmt.Errorf("withdrawing its key update: %w", err)
	}
	delete(details, "withdrawError")
	if old != "" {
		details["replaces"], details["superseded"] = old, false
	}
	return nil
}

// supersedeReplaced supersedes the certificate that the key update serial,
// now confirmed, replaced; details get which and whether. When serial
// itself was revoked since (by its holder or an officer; not superseded by
// a later renewal of its own), superseding would leave the holder no valid
// certificate: the key update is withdrawn instead, as for a rejection, and
// the replaced certificate stays valid, and renewable, unless an earlier
// attempt superseded it already (supersededAlready).
func (s *Server) supersedeReplaced(ctx context.Context, actor, serial string, details map[string]any) error {
	rec, err := s.c.Enrol.Certificate(ctx, serial)
	if err != nil {
		details["supersedeError"] = err.Error()
		return fmt.Errorf("reading the certificate: %w", err)
	}
	if rec.Replaces == "" {
		return nil
	}
	revokedSince := rec.Revoked && rec.RevocationReason != int(revocation.Superseded)
	if revokedSince {
		done, err := s.supersededAlready(ctx, rec.Replaces)
		if err != nil {
			details["replaces"], details["supersedeError"] = rec.Replaces, err.Error()
			return fmt.Errorf("reading %s: %w", rec.Replaces, err)
		}
		revokedSince = !done
	}
	if revokedSince {
		old, err := s.c.Enrol.WithdrawRejected(ctx, serial)
		if err != nil {
			details["replaces"], details["withdrawError"] = rec.Replaces, err.Error()
			return fmt.Errorf("withdrawing the key update of a certificate revoked since: %w", err)
		}
		delete(details, "withdrawError")
		details["replaces"], details["superseded"] = old, false
		details["note"] = "the confirmed certificate was revoked before the one it replaced was superseded: that one stays valid"
		return nil
	}
	old, err := s.c.Enrol.SupersedeConfirmed(ctx, actor, serial)
	if err != nil {
		details["replaces"], details["supersedeError"] = rec.Replaces, err.Error()
		return fmt.Errorf("superseding %s: %w", rec.Replaces, err)
	}
	delete(details, "supersedeError")
	if old != "" {
		details["replaces"], details["superseded"] = old, true
	}
	return nil
}

// supersededAlready reports whether the certificate serial, which a
// confirmed key update replaced, is revoked as superseded already: an
// earlier attempt of the follow-up superseded it and failed after (the
// renewal not recorded as complete, a crash before the transaction was
// closed). Withdrawing the key update then would record that it stays
// valid, which it no longer is: the supersede is completed instead.
func (s *Server) supersededAlready(ctx context.Context, serial string) (bool, error) {
	old, err := s.c.Enrol.Certificate(ctx, serial)
	if err != nil {
		return false, err
	}
	return old.Revoked && old.RevocationReason == int(revocation.Superseded), nil
}

// RetryFollowUps does the follow-up of the certConfs left undone
// (revoking a rejected certificate and withdrawing its key update, or
// superseding the certificate a confirmed key update replaced) for
// enrol.ExpiryLease, in claims of ExpiryBatch, records each as cmp.followup
// and closes its transaction ("rejected", "confirmed"); it returns how many
// it completed. Servers sharing the database may run it at once: each
// transaction is claimed by one. A transaction that fails does not hold up
// the others of its claim; the run ends after that claim, returning the
// failures, and the failed ones are claimed again once their claim is
// stale.
func (s *Server) RetryFollowUps(ctx context.Context) (int, error) {
	return s.sweepClaimed(ctx, func(now time.Time) ([]enrol.Transaction, error) {
		txs, err := s.c.Transactions.ClaimFollowUps(ctx, now.Add(-enrol.ExpiryLease), now, ExpiryBatch)
		if err != nil {
			return nil, fmt.Errorf("cmp: claiming certConfs whose follow-up is undone: %w", err)
		}
		return txs, nil
	}, s.retryFollowUp)
}

// retryFollowUp does the follow-up of the claimed transaction tx, records
// it (cmp.followup, actor thiqa-serve) and closes tx.
func (s *Server) retryFollowUp(ctx context.Context, tx enrol.Transaction) error {
	details := map[string]any{"transactionID": tx.ID, "state": settledState(tx.State), "sender": tx.Sender,
		"note": "the follow-up of the certConf failed when it came: done by the sweep"}
	if err := s.followUp(ctx, expiryActor, tx, details); err != nil {
		if permanentFailure(err) {
			return s.giveUp(ctx, tx, details, err)
		}
		return err
	}
	if err := s.c.Enrol.Audit(ctx, audit.Entry{Actor: expiryActor, Action: "cmp.followup", Object: tx.Serial, Outcome: audit.OutcomeSuccess,
		Details: details}); err != nil {
		return fmt.Errorf("cmp: recording the follow-up of transaction %s: %w", tx.ID, err)
	}
	if err := s.c.Transactions.FinishFollowUp(ctx, tx.ID, s.c.Enrol.Now().UTC()); err != nil && !errors.Is(err, enrol.ErrNoTransaction) {
		return fmt.Errorf("cmp: closing transaction %s after its follow-up: %w", tx.ID, err)
	}
	return nil
}

// ActionFollowUpFailed is the audit action of a follow-up given up
// (giveUp), with outcome failure.
const ActionFollowUpFailed = "cmp.followup.failed"

// errGivenUp is what giveUp returns once a follow-up is recorded as failed
// for good: the sweep counts it neither as done nor as a failure to retry.
var errGivenUp = errors.New("cmp: follow-up failed for good")

// permanentFailure reports whether err, a follow-up's failure, is a
// refusal that no retry can change: the certificate (or the one it
// replaced) is unknown here, the revocation refused for its serial or
// reason, the key update cannot be withdrawn. A timeout, a cancellation
// or an outage (the database, the HSM, the audit log) never is, even
// joined with one: it is retried.
func permanentFailure(err error) bool {
	switch {
	case err == nil, errors.Is(err, context.DeadlineExceeded), errors.Is(err, context.Canceled), outage.Is(err):
		return false
	}
	for _, target := range []error{revocation.ErrNotFound, revocation.ErrBadSerial, revocation.ErrBadReason, revocation.ErrNotPermitted,
		ca.ErrNotFound, ca.ErrNotWithdrawable} {
		if errors.Is(err, target) {
			return true
		}
	}
	return false
}

// giveUp records that the follow-up of tx failed for good (why): tx
// "failed", which no sweep claims again, with the audit record
// cmp.followup.failed (actor thiqa-serve, outcome failure, with details,
// the state it was in and the error) in the same store transaction, then
// counted in thiqa_cmp_followup_failed_total and logged as an error. The
// certificate a client rejected (or never confirmed) may still be valid,
// or the one a confirmed key update replaced was not superseded: an
// operator revokes it by hand (docs/operations.md). It returns errGivenUp
// once both are recorded; else the failure, with neither recorded (the
// database down), and the sweep gives it up again when the claim is
// stale: one record, and one count, for each follow-up however often that
// fails.
func (s *Server) giveUp(ctx context.Context, tx enrol.Transaction, details map[string]any, why error) error {
	d := maps.Clone(details)
	d["transactionID"], d["state"], d["error"] = tx.ID, tx.State, why.Error()
	todo := "the certificate may still be valid: revoke it by hand (cessationOfOperation)"
	if tx.State == "confirming" {
		todo = "the certificate this key update replaced was not superseded: revoke it by hand (superseded)"
	}
	d["note"] = "the follow-up failed for good and is no longer retried; " + todo
	seal, err := s.c.Enrol.PrepareAudit(audit.Entry{Actor: expiryActor, Action: ActionFollowUpFailed, Object: tx.Serial, Outcome: audit.OutcomeFailure,
		Details: d})
	if err != nil {
		return fmt.Errorf("cmp: recording that the follow-up of transaction %s failed for good (%v): %w", tx.ID, why, err)
	}
	switch err := s.c.Transactions.FailFollowUp(ctx, tx.ID, s.c.Enrol.Now().UTC(), seal); {
	case errors.Is(err, enrol.ErrNoTransaction):
		// Closed meanwhile (its follow-up done, or given up, by another):
		// nothing to record or count.
		return errGivenUp
	case err != nil:
		return fmt.Errorf("cmp: recording that the follow-up of transaction %s failed for good (%v): %w", tx.ID, why, err)
	}
	s.followUpFailed.WithLabelValues(tx.State).Inc()
	s.log.ErrorContext(ctx, "a CMP follow-up failed for good and is no longer retried: "+todo,
		"serial", tx.Serial, "transactionID", tx.ID, "state", tx.State, "err", why)
	return errGivenUp
}

// unrecorded answers a request whose certificate, issued without implicit
// confirmation, has no transaction record (recordErr): no certConf could
// confirm it and the sweep would never find it, so it would stay valid
// although its client never confirmed it, and a key update's current
// certificate could never be renewed again. It is not sent: it is handled
// as rejected at once (revoked cessationOfOperation, its key update
// withdrawn, recorded as cmp.unconfirmed). Beforehand the transaction is
// recorded again, claimed for the sweep ("expiring", its claim stale after
// enrol.ExpiryLease), so that the sweep revokes the certificate if this
// revocation fails too. The answer is the failure (transactionIdInUse when
// another request took the transaction ID meanwhile). It takes at most
// unrecordedTimeout: the record failed, so the database may be hanging,
// and the client is answered whatever it could not do by then (the
// sweep or an operator does it, as logged).
func (s *Server) unrecorded(ctx context.Context, tx enrol.Transaction, recordErr error) *cmpError {
	// The client going away changes nothing, but a database that does
	// not answer must not hold the request (and its goroutine) for ever:
	// the request has no deadline of its own.
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), s.unrecordedWait)
	defer cancel()
	inUse := errors.Is(recordErr, enrol.ErrTransactionInUse)
	swept := false
	if !inUse {
		claim := tx
		claim.State, claim.Closed = "expiring", tx.Created
		swept = s.c.Transactions.InsertTransaction(ctx, claim) == nil
	}
	details := map[string]any{"transactionID": tx.ID, "issuedAt": tx.Created, "recordError": recordErr.Error(),
		"note": "the transaction could not be recorded: no certConf could confirm the certificate, which was not sent, and is handled as rejected"}
	switch err := s.revokeUnwanted(ctx, expiryActor, tx.Serial, details); {
	case err != nil && swept:
		s.log.ErrorContext(ctx, "revoking a CMP certificate whose transaction could not be recorded (the sweep retries it)",
			"serial", tx.Serial, "transactionID", tx.ID, "err", err)
	case err != nil:
		s.log.ErrorContext(ctx, "a CMP certificate was issued but neither recorded nor revoked: revoke it (cessationOfOperation)",
			"serial", tx.Serial, "transactionID", tx.ID, "recordErr", recordErr, "err", err)
	default:
		if err := s.c.Enrol.Audit(ctx, audit.Entry{Actor: expiryActor, Action: "cmp.unconfirmed", Object: tx.Serial, Outcome: audit.OutcomeSuccess,
			Details: details}); err != nil {
			s.log.ErrorContext(ctx, "recording the revocation of a CMP certificate whose transaction could not be recorded", "serial", tx.Serial, "err", err)
			break // the sweep, if it has the record, records it
		}
		if swept {
			if err := s.c.Transactions.FinishExpired(ctx, tx.ID, s.c.Enrol.Now().UTC()); err != nil {
				s.log.WarnContext(ctx, "closing a CMP transaction recorded after its certificate was revoked", "transactionID", tx.ID, "err", err)
			}
		}
	}
	if inUse {
		return failf(TransactionIDInUse, "transaction ID already used")
	}
	return systemError(recordErr, "the transaction could not be recorded: the certificate issued for it was revoked, not sent")
}
