package ca

import (
	"bytes"
	"context"
	"crypto/x509"
	"errors"
	"fmt"
	"maps"
	"math/big"
	"slices"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/thiqa/thiqa/policies"
)

// An issuing CA the root has revoked. After a key compromise the operators
// revoke the issuing CA's certificate on the root CRL (signed offline in
// the key ceremony, imported with `thiqa ca crl import`). Every
// certificate the CA signs after that is worthless to relying parties, so
// from the moment the root CRL a node serves lists the certificate of a
// generation it issues from, the node refuses every issuance from that
// generation (ApplyRootCRL); the other CAs keep issuing, and OCSP and CRLs
// keep being served.

// ErrIssuerRevoked matches every *IssuerRevokedError (errors.Is).
var ErrIssuerRevoked = errors.New("issuing CA revoked by the root")

// ProblemIssuerRevoked is the RFC 9457 problem type of an
// *IssuerRevokedError in the CA's HTTP answers. Its status is 409: the
// request conflicts with the state of the issuing CA, and no retry helps
// until the operators act (a 503 would carry the house's Retry-After of a
// few seconds, inviting clients to come back at once).
const ProblemIssuerRevoked = "urn:thiqa:problem:issuing-ca-revoked"

// IssuerRevokedError refuses a certificate whose issuing CA generation the
// root CRL lists as revoked. It is the service's condition, not the
// caller's fault (IsRefusal is false: audited as a failure), and it lasts
// while the root CRL lists the CA.
type IssuerRevokedError struct {
	// CA is the issuing CA (citizen); Issuer the generation's issuer name
	// (citizen_2) and Generation its number.
	CA, Issuer string
	Generation int
	// Serial is the CA certificate's serial (hex).
	Serial string
	// RevokedAt and Reason are the root CRL entry's revocationDate and
	// reasonCode (0, unspecified, when it has none).
	RevokedAt time.Time
	Reason    int
	// CRLNumber is the root CRL's number ("none" when it has none).
	CRLNumber string
	// caCert is the generation's certificate (RevokedIssuers.RevokedIssuerOf).
	caCert *x509.Certificate
}

// Error implements the error interface; it says what the operators must do.
func (e *IssuerRevokedError) Error() string {
	return fmt.Sprintf("issuing CA %s (generation %d, %s, certificate serial %s) was revoked by the root on %s (reason %s, root CRL number %s): "+
		"nothing was issued; its certificates would not be trusted. The other CAs keep issuing. The CA operators must roll the CA over to a new key "+
		"(thiqa ca rollover --name %s, the key ceremony, thiqa ca import, a restart; docs/operations.md, Key compromise)",
		e.CA, e.Generation, e.Issuer, e.Serial, e.RevokedAt.UTC().Format(time.RFC3339), reasonText(e.Reason), e.CRLNumber, e.CA)
}

// Is makes errors.Is match ErrIssuerRevoked.
func (e *IssuerRevokedError) Is(target error) bool { return target == ErrIssuerRevoked }

// reasonText names an RFC 5280 CRLReason.
func reasonText(r int) string {
	names := map[int]string{0: "unspecified", 1: "keyCompromise", 2: "cACompromise", 3: "affiliationChanged", 4: "superseded",
		5: "cessationOfOperation", 6: "certificateHold", 9: "privilegeWithdrawn", 10: "aACompromise"}
	if n, ok := names[r]; ok {
		return n
	}
	return fmt.Sprintf("code %d", r)
}

// RevokedIssuers holds the issuing CA generations the root CRL applied
// last revokes (Authority.ApplyRootCRL). Every Authority of a process over
// the same hierarchy shares one (AuthorityConfig.Revoked): the CA API's,
// the OCSP responders' and the TSA units' certifier refuse alike. The zero
// value lists none.
type RevokedIssuers struct {
	mu sync.Mutex // orders updates, so each change is logged once
	// applied is the root CRL applied last (nil: none); an older one
	// applied after it changes nothing.
	applied *x509.RevocationList
	cur     atomic.Pointer[map[string]*IssuerRevokedError]
	// unknown, when set, is why the node cannot tell which issuing CAs
	// the root CRL revokes (RootCRLUnknown): issuance from every CA the
	// root certified is refused until a root CRL is applied or the store
	// says none was imported (RootCRLNone).
	unknown atomic.Pointer[error]
}

// ErrIssuerStateUnknown matches every *IssuerStateUnknownError.
var ErrIssuerStateUnknown = errors.New("issuing CA revocation state unknown")

// IssuerStateUnknownError refuses a certificate while the node cannot read
// or apply the imported root CRL, so cannot tell whether the root revoked
// the issuing CA: it fails closed. It matches ErrIssuerStateUnknown and
// also ErrIssuerRevoked, so that every surface (CA API, enrolment, CMP,
// EST, portal) answers it as it answers a revoked CA (409
// issuing-ca-revoked, audited as a failure): for a relying party a
// certificate from a CA that may be revoked is no better, and no client
// needs to learn a new problem type. The detail says which it is. It
// lasts until the next successful reload (30 s) or the operators fix the
// store.
type IssuerStateUnknownError struct {
	// CA is the issuing CA, Issuer the generation's issuer name.
	CA, Issuer string
	// Cause is why the root CRL could not be read or applied.
	Cause error
}

// Error implements the error interface; it says what the operators must do.
func (e *IssuerStateUnknownError) Error() string {
	return fmt.Sprintf("issuing CA %s (%s): the imported root CRL could not be read or applied (%v), so whether the root revoked this CA is unknown: "+
		"nothing was issued. Serving nodes retry at each root CRL reload; check the database and the root CRL (thiqa ca crl import; docs/operations.md, Key compromise)",
		e.CA, e.Issuer, e.Cause)
}

// Is makes errors.Is match ErrIssuerStateUnknown and ErrIssuerRevoked.
func (e *IssuerStateUnknownError) Is(target error) bool {
	return target == ErrIssuerStateUnknown || target == ErrIssuerRevoked
}

// Unwrap returns the cause.
func (e *IssuerStateUnknownError) Unwrap() error { return e.Cause }

// RootCRLUnknown records that the imported root CRL could not be read or
// applied (cause): from then on Issue refuses every issuance from a CA the
// root certified with an *IssuerStateUnknownError, until ApplyRootCRL
// succeeds or RootCRLNone is called. With onlyIfNone it changes nothing
// once a root CRL was applied (a failed read while a reload keeps the
// state known).
func (r *RevokedIssuers) RootCRLUnknown(cause error, onlyIfNone bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if onlyIfNone && r.applied != nil {
		return
	}
	r.unknown.Store(&cause)
}

// RootCRLNone records that the store holds no imported root CRL: nothing
// is revoked that was not before, and the state is known again. Once a
// root CRL was applied it changes nothing: an imported CRL is only ever
// replaced, never removed, so "none" is then a read begun before the
// import (a TSA certifier's open racing a reload) and must not lift the
// refusal a newer CRL that could not be applied left.
func (r *RevokedIssuers) RootCRLNone() {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.applied != nil {
		return
	}
	r.unknown.Store(nil)
}

// unknownCause returns why the state is unknown (nil: it is known).
func (r *RevokedIssuers) unknownCause() error {
	if e := r.unknown.Load(); e != nil {
		return *e
	}
	return nil
}

// older reports whether rl is older than the root CRL applied last: a
// lower CRL number when both have one, else an earlier thisUpdate. Two
// authorities of a process apply the CRLs they read in whatever order
// they get to it (one opened while a reload reads a newer CRL, a node
// reading a CRL held back for its switch time): the newest wins, not the
// last applied, so an older CRL never lifts a revocation.
func (r *RevokedIssuers) older(rl *x509.RevocationList) bool {
	old := r.applied
	switch {
	case old == nil:
		return false
	case rl.Number != nil && old.Number != nil:
		return rl.Number.Cmp(old.Number) < 0
	default:
		return rl.ThisUpdate.Before(old.ThisUpdate)
	}
}

// get returns the refusals by issuer name (nil before any CRL).
func (r *RevokedIssuers) get() map[string]*IssuerRevokedError {
	if m := r.cur.Load(); m != nil {
		return *m
	}
	return nil
}

// removeFromCRL is the reasonCode of a delta CRL entry that takes a
// certificate off hold: it does not revoke.
const removeFromCRL = 8

// ApplyRootCRL reads which issuing CA generations of this authority the
// root CRL rl lists as revoked; from then on Issue refuses each of them
// with an *IssuerRevokedError until a newer root CRL no longer lists it.
// It logs each change once. A CRL older than the one applied before
// (RevokedIssuers.older) changes nothing. A CRL not signed by the root, or
// naming another issuer, is refused and changes nothing.
func (a *Authority) ApplyRootCRL(ctx context.Context, rl *x509.RevocationList) error {
	if rl == nil {
		return errors.New("applying the root CRL: no CRL")
	}
	if err := rl.CheckSignatureFrom(a.root); err != nil {
		return fmt.Errorf("applying the root CRL: it does not verify with the root's key: %w", err)
	}
	if !bytes.Equal(rl.RawIssuer, a.root.RawSubject) {
		return fmt.Errorf("applying the root CRL: it names issuer %s, not the root %s", rl.Issuer, a.root.Subject)
	}
	number := "none"
	if rl.Number != nil {
		number = rl.Number.String()
	}
	listed := map[string]x509.RevocationListEntry{}
	for _, e := range rl.RevokedCertificateEntries {
		if e.SerialNumber != nil && e.ReasonCode != removeFromCRL {
			listed[string(e.SerialNumber.Bytes())] = e
		}
	}
	next := map[string]*IssuerRevokedError{}
	for name, is := range a.byName {
		if !bytes.Equal(is.cert.RawIssuer, a.root.RawSubject) {
			continue
		}
		if e, ok := listed[string(is.cert.SerialNumber.Bytes())]; ok {
			next[name] = &IssuerRevokedError{CA: is.ca, Issuer: name, Generation: is.generation, Serial: serialHex(is.cert.SerialNumber),
				RevokedAt: e.RevocationTime, Reason: e.ReasonCode, CRLNumber: number, caCert: is.cert}
		}
	}
	a.revoked.mu.Lock()
	defer a.revoked.mu.Unlock()
	if a.revoked.older(rl) {
		a.log.DebugContext(ctx, "root CRL older than the one applied: ignored for the revoked issuing CAs", "crlNumber", number)
		return nil
	}
	a.revoked.applied = rl
	prev := a.revoked.get()
	for _, name := range slices.Sorted(maps.Keys(next)) {
		if _, was := prev[name]; !was {
			a.log.ErrorContext(ctx, "issuing CA revoked by the root CRL: every issuance from it is refused until it is rolled over (docs/operations.md, Key compromise)",
				"ca", next[name].CA, "issuer", name, "serial", next[name].Serial, "revokedAt", next[name].RevokedAt, "reason", reasonText(next[name].Reason), "crlNumber", number)
		}
	}
	for _, name := range slices.Sorted(maps.Keys(prev)) {
		if _, still := next[name]; !still {
			a.log.WarnContext(ctx, "issuing CA no longer listed on the root CRL: it issues again", "ca", prev[name].CA, "issuer", name, "crlNumber", number)
		}
	}
	a.revoked.cur.Store(&next)
	if a.revoked.unknown.Swap(nil) != nil {
		a.log.InfoContext(ctx, "the root CRL was applied: the issuing CAs' revocation state is known again", "crlNumber", number)
	}
	return nil
}

// RevokedIssuerOf returns the *IssuerRevokedError of the issuing CA
// generation that issued cert when the root CRL applied last lists that
// generation as revoked, else nil: every certificate it issued, a TSA
// unit's included, is worthless to relying parties from then on. It reads
// the names and key identifiers only (a signature check only for a
// certificate without them), so it is cheap enough for every request
// (timestamp.IssuerStatus: the TSA asks it for each time-stamp). A state
// that is unknown (RootCRLUnknown) is not a revocation: nil.
func (r *RevokedIssuers) RevokedIssuerOf(cert *x509.Certificate) error {
	m := r.get()
	if len(m) == 0 || cert == nil {
		return nil
	}
	for _, e := range m {
		c := e.caCert
		if c == nil || !bytes.Equal(cert.RawIssuer, c.RawSubject) {
			continue
		}
		if len(cert.AuthorityKeyId) > 0 && len(c.SubjectKeyId) > 0 {
			if bytes.Equal(cert.AuthorityKeyId, c.SubjectKeyId) {
				return e
			}
			continue
		}
		if cert.CheckSignatureFrom(c) == nil {
			return e
		}
	}
	return nil
}

// Revoked returns the state a shares with the other authorities of the
// process (AuthorityConfig.Revoked).
func (a *Authority) Revoked() *RevokedIssuers { return a.revoked }

// serialHex writes a certificate serial as the store does (hex of its bytes).
func serialHex(n *big.Int) string { return fmt.Sprintf("%x", n.Bytes()) }

// checkRevoked returns the refusal of req (a certificate of profile p from
// is; a renewal when rn is set), or nil. The service's own delegated OCSP
// responder certificates are still issued: OCSP for what the CA issued must
// go on (RFC 6960 §2.7 lets a responder answer as before; the end-entity
// certificates the operators revoke with caCompromise must be seen
// revoked), as the CA's CRLs go on being signed with the same key. Only
// those: a key the service generated for itself (no CSR, no proof of
// possession, no credential: revocation.Responders). An ocsp-responder
// certificate a caller asks for (the officer API, CMP, EST) is refused like
// any other: an OCSP signing key of a caller's choosing certified by the
// revoked CA would answer for its certificates.
func (a *Authority) checkRevoked(is *Issuer, p *policies.Profile, req Request, rn *renewal) error {
	var e error
	if r, ok := a.revoked.get()[is.name]; ok {
		e = r
	} else if cause := a.revoked.unknownCause(); cause != nil && bytes.Equal(is.cert.RawIssuer, a.root.RawSubject) {
		e = &IssuerStateUnknownError{CA: is.ca, Issuer: is.name, Cause: cause}
	} else {
		return nil
	}
	if p.Name == policies.ProfileOCSPResponder && rn == nil && req.KeyGeneratedByService && len(req.CSR) == 0 &&
		req.PossessionProvedBy == "" && req.CredentialID == "" {
		return nil
	}
	return e
}

// RevokedWarning is the readiness warning of the issuing CA generations the
// root CRL lists as revoked, and of a root CRL that could not be read or
// applied ("" while neither): /readyz names them without failing, since
// OCSP and CRLs must go on being served.
func (a *Authority) RevokedWarning() string {
	m := a.revoked.get()
	var parts []string
	if cause := a.revoked.unknownCause(); cause != nil {
		parts = append(parts, fmt.Sprintf("the imported root CRL could not be read or applied (%v): issuance from the CAs the root certified is refused until the next reload succeeds", cause))
	}
	if len(m) > 0 {
		var names []string
		for _, name := range slices.Sorted(maps.Keys(m)) {
			names = append(names, fmt.Sprintf("%s (CA %s, revoked %s)", name, m[name].CA, m[name].RevokedAt.UTC().Format(time.RFC3339)))
		}
		parts = append(parts, "the root CRL revokes issuing CA "+strings.Join(names, ", ")+": issuance from it is refused; roll it over (docs/operations.md, Key compromise)")
	}
	return strings.Join(parts, "; ")
}

// revokedCollector exports thiqa_issuing_ca_revoked{ca, issuer}: 1 for each
// issuing CA generation the root CRL lists as revoked, 0 for the others.
type revokedCollector struct {
	a    *Authority
	desc *prometheus.Desc
}

func (a *Authority) revokedCollector() prometheus.Collector {
	return &revokedCollector{a: a, desc: prometheus.NewDesc("thiqa_issuing_ca_revoked",
		"1 while the newest root CRL this node has read lists the certificate of this issuing CA generation as revoked (issuance from it is refused), else 0.",
		[]string{"ca", "issuer"}, nil)}
}

// Describe implements prometheus.Collector.
func (c *revokedCollector) Describe(ch chan<- *prometheus.Desc) { ch <- c.desc }

// Collect implements prometheus.Collector.
func (c *revokedCollector) Collect(ch chan<- prometheus.Metric) {
	m := c.a.revoked.get()
	names := slices.Collect(maps.Keys(c.a.byName))
	sort.Strings(names)
	for _, name := range names {
		v := 0.0
		if _, ok := m[name]; ok {
			v = 1
		}
		ch <- prometheus.MustNewConstMetric(c.desc, prometheus.GaugeValue, v, c.a.byName[name].ca, name)
	}
}
