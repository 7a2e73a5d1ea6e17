package cmp

import (
	"context"
	"crypto"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/thiqa/thiqa/ca"
	"github.com/thiqa/thiqa/enrol"
	"github.com/thiqa/thiqa/internal/audit"
)

// Certificate confirmation, and what happens when it does not come.
//
// RFC 9810 (CMP, which obsoletes RFC 4210) §5.1.1.2 defines
// confirmWaitTime as what "is used by the CA or RA to inform the EE how
// long it intends to wait for the certificate confirmation before revoking
// the certificate and deleting the transaction", and RFC 9483 (Lightweight
// CMP) §4.1.1 says: "If the PKI management entity does not receive the
// expected certConf message in time, it MUST handle this like a rejection
// by the EE." A rejected certificate is revoked (confirm), so an
// unconfirmed one is too: enrol.ConfirmWaitTime after it was sent, by
// ExpireUnconfirmed (every minute on every server) or by the late certConf
// itself, with the reason confirm gives a rejection, cessationOfOperation
// (RFC 5280 §5.3.1; X.509: the certificate is no longer needed for its
// purpose). keyCompromise would claim what nobody knows (and block the
// key), superseded a replacement there is not, unspecified says nothing.
// The answer to a certConf after the window is certRevoked, "the
// certificate has already been revoked" (PKIFailureInfo in RFC 9810's
// ASN.1 module).
//
// A key update (kur) without implicit confirmation replaces the holder's
// current certificate only once the new one is confirmed: the renewal
// leaves the current one valid (enrol.Service.ReenrolUnconfirmed), a
// positive certConf supersedes it, and a rejection or a missing certConf
// withdraws the renewal, leaving the current certificate as it was and
// renewable again (the holder signs its next kur with it). Which of the
// three happens is decided once, by the claim of the transaction
// (CloseTransaction: confirmed, rejecting or confirming, or expiring for
// the sweep); what a certConf decided is retried by the sweep until done
// (followup.go). With implicit confirmation the current certificate is
// superseded at issuance, as by EST and the REST renewal.

// expiryActor is who revokes an unconfirmed certificate in the audit log.
const expiryActor = "thiqa-serve"

// ExpiryBatch bounds the transactions one claim of ExpireUnconfirmed
// takes; expiryRounds the claims of one run (the next run goes on).
const (
	ExpiryBatch  = 100
	expiryRounds = 10
)

// confirmInfo is the generalInfo of a response carrying a certificate:
// implicitConfirm when it was granted, else confirmWaitTime, the time
// (whole seconds, rounded down) until which the certConf is awaited.
func confirmInfo(implicit bool, issued time.Time) ([]infoTypeAndValue, error) {
	if implicit {
		return []infoTypeAndValue{{Type: oidImplicitConfirm, Value: asn1.RawValue{FullBytes: asn1.NullBytes}}}, nil
	}
	v, err := asn1.MarshalWithParams(issued.Add(enrol.ConfirmWaitTime).UTC().Truncate(time.Second), "generalized")
	if err != nil {
		return nil, err
	}
	return []infoTypeAndValue{{Type: oidConfirmWaitTime, Value: asn1.RawValue{FullBytes: v}}}, nil
}

// errConfirmTooLate is the answer to a certConf after the window.
func errConfirmTooLate(tx *enrol.Transaction) *cmpError {
	return failf(CertRevoked, "no certConf came by %s (confirmWaitTime): the certificate was revoked",
		tx.Created.Add(enrol.ConfirmWaitTime).UTC().Format(time.RFC3339))
}

// errConfirmGivenUp is the answer to a certConf for a transaction whose
// follow-up the server gave up (state "failed": giveUp), whether by this
// certConf or before it: an error message, PKIStatus rejection, failInfo
// systemFailure ("the request cannot be handled due to system failure",
// RFC 9810's PKIFailureInfo). pkiConf, or certConfirmed ("the certificate
// has already been confirmed"), would tell the client that the
// transaction ended as it asked, when the rejected certificate may still
// be valid, or the certificate a key update replaced was not superseded,
// until an operator settles it; badRequest and transactionIdInUse would
// blame the client, which did its part.
func errConfirmGivenUp() *cmpError {
	return failf(SystemFailure, "the server could not complete this transaction and gave it up: the certificate is left to an operator, not confirmed")
}

// confirm answers certConf: the transaction's sender confirms (or
// rejects) the certificate it was given, within enrol.ConfirmWaitTime.
// A certConf whose follow-up is given up, now or before, is answered
// errConfirmGivenUp.
func (s *Server) confirm(ctx context.Context, m *message, p *party) ([]byte, *cmpError) {
	var sts []certStatus
	if rest, err := asn1.Unmarshal(m.body, &sts); err != nil || len(rest) > 0 {
		return nil, failf(BadDataFormat, "malformed CertConfirmContent")
	}
	id := hex.EncodeToString(m.header.TransactionID)
	tx, err := s.c.Transactions.GetTransaction(ctx, id)
	if errors.Is(err, enrol.ErrNoTransaction) {
		return nil, failf(BadRequest, "no certificate of this transaction waits for a confirmation")
	}
	if err != nil {
		return nil, systemError(err, "the transaction could not be read")
	}
	if tx.Sender != p.sender() || p.kind == "" {
		return nil, failf(NotAuthorized, "the confirmation must come from the party that asked for the certificate")
	}
	switch {
	case tx.State == "expiring" || tx.State == "expired":
		return nil, errConfirmTooLate(tx)
	case tx.State == "failed":
		return nil, errConfirmGivenUp()
	case tx.State != "waiting":
		// A certConf sent again, accepting or rejecting, after the first
		// was answered pkiConf: certConfirmed, as docs/operations.md
		// promises and the Lightweight CMP conformance tests (siemens
		// cmp-test-suite) expect of a valid certConf sent twice. RFC 9483
		// §4.1.1 asks pkiConf for "a valid certConf", which ends the
		// transaction. A client that lost the pkiConf learns from
		// certConfirmed that its certConf was taken; pkiConf would also
		// acknowledge a second certConf saying the opposite of the first.
		return nil, failf(CertConfirmed, "the transaction was closed already (%s)", tx.State)
	}
	now := s.c.Enrol.Now().UTC()
	if now.After(tx.Created.Add(enrol.ConfirmWaitTime)) {
		return nil, s.confirmTooLate(ctx, tx, now)
	}
	if len(sts) != 1 {
		return nil, failf(BadRequest, "%d certificate statuses (want 1)", len(sts))
	}
	rec, err := s.c.Enrol.Certificate(ctx, tx.Serial)
	if err != nil {
		return nil, systemError(err, "the certificate could not be read")
	}
	if want := certHash(rec, sts[0].HashAlg); want == nil || !hmacEqual(want, sts[0].CertHash) {
		return nil, failf(BadCertID, "certHash is not the hash of the certificate issued")
	}
	// A rejection, and the confirmation of a key update, have a follow-up
	// (followUp): the transaction stays "rejecting" or "confirming" until
	// it is done, and the sweep retries it if it fails here.
	state := "confirmed"
	switch {
	case sts[0].StatusInfo.Status == statusRejection:
		state = "rejecting"
	case rec.Replaces != "":
		state = "confirming"
	}
	if err := s.c.Transactions.CloseTransaction(ctx, id, state, now); err != nil {
		if !errors.Is(err, enrol.ErrNoTransaction) {
			// Not recorded: the transaction still waits, and the client
			// must send its certConf again (certConfirmed would tell it
			// the certificate is confirmed, and the sweep revoke it).
			return nil, systemError(err, "the confirmation could not be recorded")
		}
		// The sweep of unconfirmed certificates may have claimed it since.
		return nil, s.answerClosed(ctx, id)
	}
	details := map[string]any{"transactionID": id, "state": settledState(state)}
	if state != "confirmed" {
		claimed := *tx
		claimed.State, claimed.Closed = state, now
		if err := s.followUp(ctx, p.actor, claimed, details); err != nil {
			// The client did its part: it is answered pkiConf, and the
			// sweep retries the follow-up (RetryFollowUps), unless no
			// retry can change its failure: given up (recorded so by
			// giveUp, cmp.followup.failed), it is answered errConfirmGivenUp.
			// (The record of one given up does not call it pending.)
			if permanentFailure(err) {
				gerr := s.giveUp(ctx, claimed, details, err)
				if errors.Is(gerr, errGivenUp) {
					return nil, errConfirmGivenUp()
				}
				err = gerr
			}
			details["followUp"] = "pending"
			s.log.ErrorContext(ctx, "following up a certConf (the sweep retries it)", "serial", tx.Serial, "transactionID", id, "err", err)
		} else if err := s.c.Transactions.FinishFollowUp(ctx, id, s.c.Enrol.Now().UTC()); err != nil && !errors.Is(err, enrol.ErrNoTransaction) {
			// Done but not recorded so: the sweep does it again, to no
			// effect (each step is idempotent), and records it.
			s.log.ErrorContext(ctx, "recording the follow-up of a certConf as done", "transactionID", id, "err", err)
		}
	}
	if err := s.c.Enrol.Audit(ctx, audit.Entry{Actor: p.actor, Action: "cmp.certconf", Object: tx.Serial, Outcome: audit.OutcomeSuccess,
		Details: details}); err != nil {
		return nil, errUnrecorded(err)
	}
	return s.reply(m, p, bodyPKIConf, asn1.NullBytes, nil, nil)
}

// answerClosed is the answer to a certConf for the transaction id, which
// another (a sweep, another node, a certConf sent at the same time) closed
// after this one read it waiting: what its state is now says.
// certRevoked once claimed for the revocation of an unconfirmed
// certificate (expiring, expired), errConfirmGivenUp once its follow-up
// was given up (failed), certConfirmed once closed by a certConf, as for
// any certConf sent again; the failure when it cannot be read (the client
// sends its certConf again and gets the answer then).
func (s *Server) answerClosed(ctx context.Context, id string) *cmpError {
	cur, err := s.c.Transactions.GetTransaction(ctx, id)
	switch {
	case err != nil:
		return systemError(err, "the transaction was closed meanwhile and could not be read")
	case cur.State == "expiring" || cur.State == "expired":
		return errConfirmTooLate(cur)
	case cur.State == "failed":
		return errConfirmGivenUp()
	}
	return failf(CertConfirmed, "the transaction was closed already (%s)", cur.State)
}

// confirmTooLate revokes the certificate of tx, whose certConf came after
// the window, unless a sweep claimed it first, and returns the answer:
// certRevoked, or the failure when the revocation failed (the sweep
// retries it once the claim is stale); answerClosed's when another closed
// the transaction first, or the revocation was given up.
func (s *Server) confirmTooLate(ctx context.Context, tx *enrol.Transaction, now time.Time) *cmpError {
	if err := s.c.Transactions.CloseTransaction(ctx, tx.ID, "expiring", now); err != nil {
		if errors.Is(err, enrol.ErrNoTransaction) {
			// A sweep took it, and may have given it up since, or a
			// certConf sent at the deadline closed it.
			return s.answerClosed(ctx, tx.ID)
		}
		return systemError(err, "the transaction could not be closed")
	}
	// Claimed as the sweep claims it: a revocation given up (giveUp) is
	// recorded and counted as the one of an unconfirmed certificate
	// (expiring), not under the state read before the claim (waiting).
	claimed := *tx
	claimed.State, claimed.Closed = "expiring", now
	if err := s.expire(ctx, claimed); errors.Is(err, errGivenUp) {
		return s.answerClosed(ctx, tx.ID) // recorded and logged by giveUp
	} else if err != nil {
		s.log.ErrorContext(ctx, "revoking an unconfirmed certificate", "serial", tx.Serial, "transactionID", tx.ID, "err", err)
		return systemError(err, "the unconfirmed certificate could not be revoked")
	}
	return errConfirmTooLate(tx)
}

// ExpireUnconfirmed revokes the certificates whose certConf did not come
// within enrol.ConfirmWaitTime (and were not implicitly confirmed), as if
// their clients had rejected them, and closes their transactions
// ("expired"), in claims of ExpiryBatch; it returns how many it revoked.
// Servers sharing the database may run it at once: each transaction is
// claimed by one, and a claim left by a server that stopped is taken over
// after enrol.ExpiryLease. A transaction that fails does not hold up the
// others of its claim (a failure that persists would otherwise keep them
// from ever being revoked, each taken over with it); the run ends after
// the claim, returning the failures, and the failed claims are taken over
// later.
func (s *Server) ExpireUnconfirmed(ctx context.Context) (int, error) {
	return s.sweepClaimed(ctx, func(now time.Time) ([]enrol.Transaction, error) {
		txs, err := s.c.Transactions.ClaimUnconfirmed(ctx, now.Add(-enrol.ConfirmWaitTime), now.Add(-enrol.ExpiryLease), now, ExpiryBatch)
		if err != nil {
			return nil, fmt.Errorf("cmp: claiming unconfirmed transactions: %w", err)
		}
		return txs, nil
	}, s.expire)
}

// sweepClaimed runs a sweep: up to expiryRounds batches of the
// transactions claim takes (each batch claimed as of the enrolment
// clock's now), do on each; a failure holds up no other transaction of
// its batch, but the run ends after that batch, returning the failures.
// One given up (errGivenUp) is neither done nor a failure.
func (s *Server) sweepClaimed(ctx context.Context, claim func(now time.Time) ([]enrol.Transaction, error),
	do func(context.Context, enrol.Transaction) error) (int, error) {
	total := 0
	for range expiryRounds {
		txs, err := claim(s.c.Enrol.Now().UTC())
		if err != nil {
			return total, err
		}
		var errs []error
		for _, tx := range txs {
			if ctx.Err() != nil {
				errs = append(errs, ctx.Err())
				break
			}
			if err := do(ctx, tx); errors.Is(err, errGivenUp) {
				continue // failed for good, recorded so: not retried
			} else if err != nil {
				errs = append(errs, err)
				continue
			}
			total++
		}
		if len(errs) > 0 {
			return total, errors.Join(errs...)
		}
		if len(txs) < ExpiryBatch {
			break
		}
	}
	return total, nil
}

// expire revokes the certificate of the expiring transaction tx
// (cessationOfOperation, through the revocation service: CRLs, OCSP and
// its audit record follow), withdraws the key update it was (the replaced
// certificate stays valid), records why (cmp.unconfirmed) and closes tx.
// A certificate revoked already (by its holder, an officer, a rejection
// or an earlier attempt) stays as it is.
func (s *Server) expire(ctx context.Context, tx enrol.Transaction) error {
	details := map[string]any{"transactionID": tx.ID, "sentAt": tx.Created, "confirmWaitTime": tx.Created.Add(enrol.ConfirmWaitTime),
		"note": "no certConf came in time: handled as a rejection (RFC 9483 §4.1.1)"}
	if err := s.revokeUnwanted(ctx, expiryActor, tx.Serial, details); err != nil {
		err = fmt.Errorf("cmp: unconfirmed certificate %s (transaction %s): %w", tx.Serial, tx.ID, err)
		if permanentFailure(err) {
			return s.giveUp(ctx, tx, details, err)
		}
		return err
	}
	if err := s.c.Enrol.Audit(ctx, audit.Entry{Actor: expiryActor, Action: "cmp.unconfirmed", Object: tx.Serial, Outcome: audit.OutcomeSuccess,
		Details: details}); err != nil {
		return fmt.Errorf("cmp: recording the expiry of transaction %s: %w", tx.ID, err)
	}
	if err := s.c.Transactions.FinishExpired(ctx, tx.ID, s.c.Enrol.Now().UTC()); err != nil && !errors.Is(err, enrol.ErrNoTransaction) {
		return fmt.Errorf("cmp: closing expired transaction %s: %w", tx.ID, err)
	}
	return nil
}

// ExpireEvery runs ExpireUnconfirmed, then RetryFollowUps, every interval
// until ctx ends: `thiqa serve` runs it in the background on every node.
// What they did is logged; a failure is logged as a warning and the next
// tick tries again.
func (s *Server) ExpireEvery(ctx context.Context, every time.Duration, logger *slog.Logger) {
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			n, err := s.ExpireUnconfirmed(ctx)
			if n > 0 {
				logger.Info("revoked CMP certificates whose certConf did not come in time", "certificates", n)
			}
			if err != nil && ctx.Err() == nil {
				logger.Warn("revoking unconfirmed CMP certificates", "err", err)
			}
			n, err = s.RetryFollowUps(ctx)
			if n > 0 {
				logger.Info("completed the follow-up of CMP certConfs left undone", "transactions", n)
			}
			if err != nil && ctx.Err() == nil {
				logger.Warn("completing the follow-up of CMP certConfs", "err", err)
			}
		}
	}
}

// certHash is the certificate's hash with the algorithm of its signature
// (RFC 4210 §5.3.18), or hashAlg when given (cmp2021).
func certHash(rec *ca.CertificateRecord, hashAlg pkix.AlgorithmIdentifier) []byte {
	h := crypto.SHA256
	if hashAlg.Algorithm != nil {
		f, ok := hashByOID(hashAlg.Algorithm)
		if !ok {
			return nil
		}
		x := f()
		x.Write(rec.DER)
		return x.Sum(nil)
	}
	c, err := x509.ParseCertificate(rec.DER)
	if err != nil {
		return nil
	}
	switch c.SignatureAlgorithm {
	case x509.ECDSAWithSHA384, x509.SHA384WithRSA, x509.SHA384WithRSAPSS:
		h = crypto.SHA384
	case x509.ECDSAWithSHA512, x509.SHA512WithRSA, x509.SHA512WithRSAPSS:
		h = crypto.SHA512
	}
	x := h.New()
	x.Write(rec.DER)
	return x.Sum(nil)
}
