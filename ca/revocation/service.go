package revocation

import (
	"context"
	"crypto/x509"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"math/big"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/thiqa/thiqa/ca"
	"github.com/thiqa/thiqa/internal/audit"
	"github.com/thiqa/thiqa/internal/auth"
	"github.com/thiqa/thiqa/policies"
)

// Revocation is one recorded revocation.
type Revocation struct {
	Serial    string // lower-case hex, as the store keys certificates
	CA        string
	Partition int
	RevokedAt time.Time // whole seconds, UTC
	Reason    int       // RFC 5280 CRLReason code
	RevokedBy string
	Recorded  time.Time // when the row was written (nanoseconds)
}

// Store keeps the revocations (package store implements it).
type Store interface {
	// Revoke records the final revocation of the issued certificate with
	// that serial (lower-case hex) by the party by, at now, and the audit
	// records rec gives for it in the same transaction (see Records). It
	// returns an error wrapping ErrNotFound when no such certificate was
	// issued and ErrAlreadyRevoked when it is revoked already; nothing
	// changes then.
	Revoke(ctx context.Context, serial string, reason int, by string, now time.Time, rec Records) (*Revocation, error)
	// RecordedSince returns up to limit revocations recorded at or after
	// since, oldest first.
	RecordedSince(ctx context.Context, since time.Time, limit int) ([]Revocation, error)
	// CompromiseKey revokes the certificate with that serial for
	// keyCompromise (unless it is revoked already), blocks its key and
	// revokes every other certificate with the key, in one transaction
	// (see CompromisedKey), with the audit records rec gives for each of
	// its transactions. It returns an error wrapping ErrNotFound when no
	// such certificate was issued, and ErrAlreadyRevoked when it was
	// revoked and its key blocked before and nothing was left to revoke;
	// nothing changes then. Revoke with reason keyCompromise does the same
	// (refusing a certificate revoked before).
	CompromiseKey(ctx context.Context, serial, by string, now time.Time, rec Records) (*CompromisedKey, error)
	// SweepBlockedKeys revokes, for keyCompromise, the issued certificates
	// not yet revoked whose key was blocked at or after since (issued while
	// the block was being recorded), with the audit records rec gives for
	// them, and returns them.
	SweepBlockedKeys(ctx context.Context, since, now time.Time, rec Records) ([]Consequence, error)
}

// Records gives the audit records of what one store transaction is about
// to commit; the store seals them into the audit chain inside that
// transaction (audit.Sealer), so that a revocation is never committed
// without its records, nor a record written for a revocation rolled back.
// An error from it rolls the transaction back. nil records nothing.
type Records func(Change) (audit.Sealer, error)

// Change is what one store transaction of a revocation commits; exactly
// one of its fields is set.
type Change struct {
	// Revocation is the revocation Revoke records (not keyCompromise).
	Revocation *Revocation
	// Compromise is what a keyCompromise revocation's first transaction
	// records (Revoke, CompromiseKey).
	Compromise *CompromisedKey
	// Consequences are certificates revoked for keyCompromise because
	// their key is blocked: found by a keyCompromise revocation's second
	// look, or by a sweep of the blocked keys.
	Consequences []Consequence
}

// Auditor appends to the hash-chained audit log (*audit.Log): refusals
// with Append, the records of a revocation with Prepare, sealed by the
// store in the transaction that commits it.
type Auditor interface {
	Append(ctx context.Context, e audit.Entry) (audit.Record, error)
	Prepare(entries ...audit.Entry) (audit.Sealer, error)
}

// Responder answers OCSP requests and re-signs a revoked certificate's
// responses at once (*ocsp.Responder).
type Responder interface {
	http.Handler
	Revoked(ctx context.Context, issuer string, serial *big.Int) error
}

// Publisher serves the CRLs and regenerates an issuer's on demand
// (*crl.Publisher).
type Publisher interface {
	http.Handler
	Trigger(issuer string)
}

// Options are the parts a Service is built from.
type Options struct {
	// Store records the revocations; Certificates finds the certificate
	// revoked. Both are required.
	Store        Store
	Certificates Certificates
	// Audit records every revocation and every refusal; required.
	Audit Auditor
	// Logger receives server-side errors; discarded when nil.
	Logger *slog.Logger
	// Responder, Publisher and Status are told of each revocation: the
	// OCSP responses are re-signed, new CRLs published and the checker
	// forgets what it knew. Each may be nil (`thiqa revoke` has none: a
	// server learns of its revocations by polling).
	Responder Responder
	Publisher Publisher
	Status    *Checker
}

// Service records revocations and carries them to the OCSP responder, the
// CRLs and the certificate status checker. It is safe for concurrent use.
type Service struct {
	o    Options
	log  *slog.Logger
	seen *seenRevocations

	watchMu  sync.Mutex
	watchers []func(context.Context, Revocation)
}

// Watch has f told of every revocation the service records and of every
// one its poller finds recorded elsewhere (`thiqa revoke`, another node),
// within about a second on every node: cmd/thiqa tells the TSA, whose
// unit stops signing at once when its own certificate is revoked. f is
// called on the revoking request or the poller: it must be quick. A
// revocation whose OCSP responses could not be re-signed is told again
// when the poller retries it.
func (s *Service) Watch(f func(ctx context.Context, r Revocation)) {
	s.watchMu.Lock()
	s.watchers = append(s.watchers, f)
	s.watchMu.Unlock()
}

// New returns the revocation service over o.
func New(o Options) (*Service, error) {
	if o.Store == nil || o.Certificates == nil || o.Audit == nil {
		return nil, errors.New("revocation: Store, Certificates and Audit are required")
	}
	log := o.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Service{o: o, log: log, seen: &seenRevocations{m: map[string]time.Time{}}}, nil
}

// NormalizeSerial turns a hex serial as a person may type it (upper case,
// "0x" prefix, colons, odd length, leading zeros) into the form the store
// keys certificates by: the lower-case hex of the serial's big-endian
// magnitude, two digits per byte.
func NormalizeSerial(s string) (string, error) {
	t := strings.ToLower(strings.TrimSpace(s))
	t = strings.TrimPrefix(t, "0x")
	t = strings.ReplaceAll(t, ":", "")
	if t == "" || len(t) > 64 {
		return "", fmt.Errorf("serial %q: want 1 to 64 hex digits", s)
	}
	for _, c := range t {
		if !(c >= '0' && c <= '9' || c >= 'a' && c <= 'f') {
			return "", fmt.Errorf("serial %q: want hex digits", s)
		}
	}
	n, _ := new(big.Int).SetString(t, 16)
	if n.Sign() <= 0 {
		return "", fmt.Errorf("serial %q: must be positive", s)
	}
	return hex.EncodeToString(n.Bytes()), nil
}

// Result is what a revocation did.
type Result struct {
	// Revocation is the certificate's revocation: recorded now, or, when
	// AlreadyRevoked, the earlier one (revocation is final: its reason and
	// time stand).
	Revocation
	// AlreadyRevoked: a keyCompromise revocation of a certificate revoked
	// before for another reason; the key was blocked all the same.
	AlreadyRevoked bool
	// KeyBlocked: the certificate's key is blocked (reason keyCompromise).
	KeyBlocked bool
	// AlsoRevoked are the other certificates with the same key, revoked
	// for keyCompromise as a consequence.
	AlsoRevoked []Revocation
}

// Revoke checks and records one revocation by actor: the certificate must
// exist, allow (nil: anyone) says whether the caller may revoke it; then
// the store commits it together with its audit record, the responder
// re-signs and the CRLs are triggered. Every refusal is audited too, and returned
// as a *Refusal.
//
// Reason keyCompromise also blocks the certificate's key for good and
// revokes every other certificate with that key (all profiles, all CAs),
// each audited naming the original; it is accepted for a certificate
// already revoked for another reason (its revocation stands: final, as
// RFC 5280 §5.3.1 has no reason change without certificateHold, which
// Thiqa never uses), and refused (ErrAlreadyRevoked) only when the key is
// blocked already and nothing is left to revoke.
func (s *Service) Revoke(ctx context.Context, actor, serial, reasonText string, allow func(*x509.Certificate) bool) (*Result, error) {
	refuse := func(why error, format string, args ...any) error {
		e := &Refusal{Reason: why, Detail: fmt.Sprintf(format, args...)}
		details := map[string]any{"reason": reasonText, "status": httpStatus(why), "error": e.Detail}
		if c := auth.CallerOf(ctx); c != nil {
			details["caller"] = c
		}
		if _, err := s.o.Audit.Append(ctx, audit.Entry{
			Actor: actor, Action: string(policies.ActionRevokeCertificate), Object: serial, Outcome: audit.OutcomeRefused,
			Details: details,
		}); err != nil {
			return fmt.Errorf("writing the audit record: %w", err)
		}
		return e
	}
	reason, err := ParseReason(reasonText)
	if err != nil {
		return nil, refuse(ErrBadReason, "%v", err)
	}
	key, err := NormalizeSerial(serial)
	if err != nil {
		return nil, refuse(ErrBadSerial, "%v", err)
	}
	rec, err := s.o.Certificates.GetCertificate(ctx, key)
	if errors.Is(err, ca.ErrNotFound) {
		return nil, refuse(ErrNotFound, "no certificate with serial %s", key)
	}
	if err != nil {
		return nil, fmt.Errorf("reading certificate %s: %w", key, err)
	}
	cert, err := x509.ParseCertificate(rec.DER)
	if err != nil {
		return nil, fmt.Errorf("stored certificate %s: %w", key, err)
	}
	if allow != nil && !allow(cert) {
		if serviceCertificate(cert) {
			return nil, refuse(ErrNotPermitted, "certificate %s is one of the service's own (a CA, the TSA unit, an OCSP responder or the CMP server): an operator revokes it on the host (thiqa revoke)", key)
		}
		return nil, refuse(ErrNotPermitted, "the caller may not revoke certificate %s", key)
	}
	if reason == KeyCompromise {
		return s.compromise(ctx, actor, key, cert, refuse)
	}
	caller := auth.ActingCaller(ctx, actor)
	records := func(c Change) (audit.Sealer, error) {
		r := c.Revocation
		if r == nil {
			return nil, fmt.Errorf("revocation of %s: the store recorded no revocation", key)
		}
		return s.o.Audit.Prepare(audit.Entry{
			Actor: actor, Action: string(policies.ActionRevokeCertificate), Object: key, Outcome: audit.OutcomeSuccess,
			Details: withCaller(map[string]any{"ca": r.CA, "reason": reason.String(), "revokedAt": r.RevokedAt, "subject": cert.Subject.String()}, caller),
		})
	}
	// The store commits the revocation and its audit record together: a
	// failed append leaves the certificate unrevoked, and a retry revokes it.
	r, err := s.o.Store.Revoke(ctx, key, int(reason), actor, time.Now(), records)
	switch {
	case errors.Is(err, ErrNotFound):
		return nil, refuse(ErrNotFound, "no certificate with serial %s", key)
	case errors.Is(err, ErrAlreadyRevoked):
		return nil, refuse(ErrAlreadyRevoked, "certificate %s is already revoked", key)
	case err != nil:
		return nil, fmt.Errorf("recording the revocation of %s: %w", key, err)
	}
	s.notify(ctx, r)
	s.log.InfoContext(ctx, "certificate revoked", "serial", key, "ca", r.CA, "reason", reason.String(), "by", actor)
	return &Result{Revocation: *r}, nil
}

// notify tells the watchers (Watch), re-signs the revoked certificate's
// OCSP responses at once, asks for new CRLs and has the status checker
// forget the certificate. It
// reports whether the OCSP responses were re-signed (true when there is no
// responder); the poller retries those that were not.
func (s *Service) notify(ctx context.Context, r *Revocation) bool {
	// The watchers first: a revoked TSA unit stops signing before the
	// OCSP re-signing, which may wait for a signing slot or the token.
	s.watchMu.Lock()
	watchers := s.watchers
	s.watchMu.Unlock()
	for _, f := range watchers {
		f(ctx, *r)
	}
	if s.o.Status != nil {
		s.o.Status.Forget(r.Serial)
	}
	ok := true
	if s.o.Responder != nil {
		serial, _ := new(big.Int).SetString(r.Serial, 16)
		if err := s.o.Responder.Revoked(ctx, r.CA, serial); err != nil {
			ok = false
			s.log.ErrorContext(ctx, "re-signing the OCSP responses of a revoked certificate failed (the poller retries)", "serial", r.Serial, "err", err)
		} else {
			s.seen.add(r.Serial, r.Recorded)
		}
	}
	if s.o.Publisher != nil {
		s.o.Publisher.Trigger(r.CA)
	}
	return ok
}

// withCaller adds to the details of a success record the authenticated
// caller that made the change (auth.ActingCaller: nil for a service acting
// under its own name, and then nothing is added), and returns them.
func withCaller(details map[string]any, caller *auth.Caller) map[string]any {
	if caller != nil {
		details["caller"] = caller
	}
	return details
}

// RevokeSuperseded revokes the certificate with that serial, reason
// superseded, for actor (ca.Superseder: a renewal replaced it); one
// revoked already is left as it is.
func (s *Service) RevokeSuperseded(ctx context.Context, actor, serial string) error {
	_, err := s.Revoke(ctx, actor, serial, "superseded", nil)
	if errors.Is(err, ErrAlreadyRevoked) {
		return nil
	}
	return err
}
