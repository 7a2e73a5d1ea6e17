package revocation

import (
	"context"
	"crypto/x509"
	"encoding/hex"
	"errors"
	"fmt"
	"time"

	"github.com/thiqa/thiqa/internal/audit"
	"github.com/thiqa/thiqa/internal/auth"
	"github.com/thiqa/thiqa/policies"
)

// CompromisedKey is what revoking a certificate for keyCompromise did. The
// store does it in one transaction: the certificate is revoked (unless it
// was already: revocation is final, its reason and time stand), its key
// (SPKI SHA-256) is blocked for good, and every other issued certificate
// with that key, of any profile and any CA of the deployment, is revoked
// for keyCompromise too.
type CompromisedKey struct {
	// Revocation is the certificate's own revocation: recorded now, or the
	// earlier one when AlreadyRevoked.
	Revocation Revocation
	// AlreadyRevoked: the certificate was revoked before (for another
	// reason, or for keyCompromise while the block was missing).
	AlreadyRevoked bool
	// KeyHash is the SHA-256 of the certificate's SubjectPublicKeyInfo.
	KeyHash [32]byte
	// AlreadyBlocked: the key was blocked before this revocation.
	AlreadyBlocked bool
	// AlsoRevoked are the other certificates with the key, revoked now.
	AlsoRevoked []Revocation
}

// Consequence is a certificate revoked because another certificate with
// its key was revoked for keyCompromise, found by a sweep of the blocked
// keys (Store.SweepBlockedKeys): one issued while the block was being
// recorded.
type Consequence struct {
	Revocation
	// Origin is the serial of the certificate whose keyCompromise
	// revocation blocked the key.
	Origin string
	// KeyHash is the blocked key (SPKI SHA-256).
	KeyHash [32]byte
}

// AuditBlockKey is the audit action of a key blocked after a keyCompromise
// revocation (the object is the key's SPKI SHA-256, hex).
const AuditBlockKey = "key.block"

// compromise records a keyCompromise revocation of cert (serial key) by
// actor through the store (CompromisedKey), audits the revocation, the key
// block and each consequential revocation, and notifies them all.
func (s *Service) compromise(ctx context.Context, actor, key string, cert *x509.Certificate, refuse func(error, string, ...any) error) (*Result, error) {
	// Each transaction of the store commits its revocations and block
	// together with their audit records: a failed append leaves nothing
	// recorded, and a retry does it all.
	caller := auth.ActingCaller(ctx, actor)
	records := func(c Change) (audit.Sealer, error) {
		if c.Compromise != nil {
			return s.o.Audit.Prepare(compromiseEntries(actor, caller, key, cert, c.Compromise)...)
		}
		return s.o.Audit.Prepare(consequenceEntries(actor, caller, c.Consequences)...)
	}
	kc, err := s.o.Store.CompromiseKey(ctx, key, actor, time.Now(), records)
	switch {
	case errors.Is(err, ErrNotFound):
		return nil, refuse(ErrNotFound, "no certificate with serial %s", key)
	case errors.Is(err, ErrAlreadyRevoked):
		return nil, refuse(ErrAlreadyRevoked, "certificate %s is already revoked and its key blocked", key)
	case kc == nil:
		return nil, fmt.Errorf("recording the revocation of %s: %w", key, err)
	case err != nil:
		// The revocation and the block stand, with their records; the
		// poller's sweep finds what the second look missed.
		s.log.ErrorContext(ctx, "key compromise recorded, but the second look for certificates with the key failed", "serial", key, "err", err)
	}
	res := &Result{Revocation: kc.Revocation, AlreadyRevoked: kc.AlreadyRevoked, KeyBlocked: true, AlsoRevoked: kc.AlsoRevoked}
	also := make([]string, len(kc.AlsoRevoked))
	for i, r := range kc.AlsoRevoked {
		also[i] = r.Serial
	}
	if !kc.AlreadyRevoked {
		s.notify(ctx, &kc.Revocation)
	}
	for i := range kc.AlsoRevoked {
		s.notify(ctx, &kc.AlsoRevoked[i])
	}
	s.log.InfoContext(ctx, "key compromise: certificate revoked and key blocked", "serial", key, "ca", kc.Revocation.CA,
		"alreadyRevoked", kc.AlreadyRevoked, "alsoRevoked", also, "by", actor)
	return res, nil
}

// compromiseEntries are the audit records of a keyCompromise revocation's
// first transaction (kc): the certificate's revocation (unless it was
// revoked before), the key block (unless it was blocked before) and each
// other certificate with the key revoked as a consequence. The revocations'
// records name caller, the authenticated caller that actor is (nil: none).
func compromiseEntries(actor string, caller *auth.Caller, key string, cert *x509.Certificate, kc *CompromisedKey) []audit.Entry {
	keyHash := hex.EncodeToString(kc.KeyHash[:])
	also := make([]string, len(kc.AlsoRevoked))
	for i, r := range kc.AlsoRevoked {
		also[i] = r.Serial
	}
	var entries []audit.Entry
	if !kc.AlreadyRevoked {
		entries = append(entries, audit.Entry{Actor: actor, Action: string(policies.ActionRevokeCertificate), Object: key, Outcome: audit.OutcomeSuccess,
			Details: withCaller(map[string]any{"ca": kc.Revocation.CA, "reason": KeyCompromise.String(), "revokedAt": kc.Revocation.RevokedAt,
				"subject": cert.Subject.String(), "keyHash": keyHash, "alsoRevoked": also}, caller)})
	}
	if !kc.AlreadyBlocked {
		d := map[string]any{"serial": key, "reason": KeyCompromise.String(), "alsoRevoked": also}
		if kc.AlreadyRevoked {
			d["revokedBefore"] = Reason(kc.Revocation.Reason).String()
		}
		entries = append(entries, audit.Entry{Actor: actor, Action: AuditBlockKey, Object: keyHash, Outcome: audit.OutcomeSuccess, Details: d})
	}
	for _, r := range kc.AlsoRevoked {
		entries = append(entries, consequenceEntry(actor, caller, Consequence{Revocation: r, Origin: key, KeyHash: kc.KeyHash}))
	}
	return entries
}

// consequenceEntries are the audit records of consequential revocations,
// each by actor (the authenticated caller caller, nil: none), or (actor
// "") by the party that blocked the key.
func consequenceEntries(actor string, caller *auth.Caller, cs []Consequence) []audit.Entry {
	entries := make([]audit.Entry, len(cs))
	for i, c := range cs {
		by := actor
		if by == "" {
			by = c.RevokedBy
		}
		entries[i] = consequenceEntry(by, caller, c)
	}
	return entries
}

// consequenceEntry is the audit record of a consequential revocation: it
// names the certificate whose keyCompromise revocation caused it, and
// caller (nil: none).
func consequenceEntry(actor string, caller *auth.Caller, c Consequence) audit.Entry {
	return audit.Entry{Actor: actor, Action: string(policies.ActionRevokeCertificate), Object: c.Serial, Outcome: audit.OutcomeSuccess,
		Details: withCaller(map[string]any{"ca": c.CA, "reason": KeyCompromise.String(), "revokedAt": c.RevokedAt,
			"consequenceOf": c.Origin, "originReason": KeyCompromise.String(), "keyHash": hex.EncodeToString(c.KeyHash[:])}, caller)}
}

// sweepWindow is how far back a sweep of the blocked keys looks (the first
// sweep of a process looks at every blocked key).
const sweepWindow = 10 * time.Minute

// sweepEvery is how often a poller polling every interval sweeps the
// blocked keys: every five polls, at least every second, at most every
// minute.
func sweepEvery(every time.Duration) time.Duration {
	return min(max(5*every, time.Second), time.Minute)
}

// sweep revokes the certificates issued while their key was being blocked
// (Store.SweepBlockedKeys, which commits them with their audit records)
// and notifies them.
func (s *Service) sweep(ctx context.Context, since time.Time) error {
	records := func(c Change) (audit.Sealer, error) {
		return s.o.Audit.Prepare(consequenceEntries("", nil, c.Consequences)...)
	}
	cs, err := s.o.Store.SweepBlockedKeys(ctx, since, time.Now(), records)
	if err != nil {
		return err
	}
	for _, c := range cs {
		s.notify(ctx, &c.Revocation)
		s.log.WarnContext(ctx, "certificate issued while its key was being blocked: revoked", "serial", c.Serial, "origin", c.Origin)
	}
	return nil
}
