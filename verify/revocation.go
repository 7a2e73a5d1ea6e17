package verify

import (
	"bytes"
	"context"
	"crypto/sha256"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"time"

	"golang.org/x/crypto/ocsp"

	"github.com/thiqa/thiqa/verify/path"
)

// RevocationPolicy says what to do when no revocation information is found
// for a certificate that is not a trust anchor.
type RevocationPolicy int

const (
	// RevocationRequired makes missing information INDETERMINATE/TRY_LATER
	// (EN 319 102-1 §5.2.6) — the default.
	RevocationRequired RevocationPolicy = iota
	// RevocationBestEffort checks what is available and only warns when
	// nothing is (for deterministic offline validation of old documents).
	RevocationBestEffort
	// RevocationIgnored does not check revocation at all (warns).
	RevocationIgnored
)

// RevocationFetcher fetches revocation information online. Implementations
// must honour the context's deadline.
type RevocationFetcher interface {
	// FetchOCSP returns a DER OCSP response for cert from one of its
	// responders.
	FetchOCSP(ctx context.Context, cert, issuer *x509.Certificate) ([]byte, error)
	// FetchCRL returns a DER CRL from one of cert's distribution points.
	FetchCRL(ctx context.Context, cert *x509.Certificate) ([]byte, error)
}

var oidOCSPNoCheck = asn1.ObjectIdentifier{1, 3, 6, 1, 5, 5, 7, 48, 1, 5}

// revocationData implements path.RevocationChecker from embedded values
// (DSS, CMS) and, when allowed, online fetching.
type revocationData struct {
	ctx      context.Context
	crls     []*x509.RevocationList
	ocsps    [][]byte
	pool     []*x509.Certificate
	fetcher  RevocationFetcher
	online   bool
	policy   RevocationPolicy
	timeout  time.Duration
	sigTime  time.Time // proven signing time (a POE, never the signer's claim): information issued after it is fresh enough
	warnings []string
	memo     *ocspMemo
	crlMemo  crlMemo
	// crlSeen holds the SHA-256 of the DER of each of crls (built when
	// first needed), so that adding one is not a walk through all: a
	// document may carry hundreds of thousands of CRLs. A digest, not the
	// DER: each signature's data adds all the DSS's CRLs, and a copy of
	// each per signature would hold signatures × CRL bytes.
	crlSeen map[[sha256.Size]byte]struct{}
	// public hides fetch errors from the report (Options.Public); log
	// receives them.
	public bool
	log    *slog.Logger
	// unreadCRLIssuers are the issuers (raw names) of CRLs present that
	// could not be parsed (e.g. an explicit v1 version): they count as
	// present for the B-LT level, never as revocation information.
	unreadCRLIssuers [][]byte
	// responderCheck is true while the status of a delegated OCSP
	// responder's certificate is being checked: then only CRLs, responses
	// the CA signed itself and responders with id-pkix-ocsp-nocheck are
	// accepted, so that no responder vouches for itself and the check
	// cannot recurse.
	responderCheck bool
}

// crlMemo holds the CRLs one document's validation has parsed (the DSS's
// are offered to the signature, its timestamps and the B-LT check).
type crlMemo map[string]*x509.RevocationList

func (rd *revocationData) addCRL(der []byte) {
	l, seen := rd.crlMemo[string(der)]
	if !seen {
		var err error
		if l, err = x509.ParseRevocationList(der); err != nil {
			l = nil
		}
		if rd.crlMemo != nil {
			rd.crlMemo[string(der)] = l
		}
	}
	if l == nil {
		// Unusable for validation, but present: B-LT is about the
		// validation data the document carries.
		if iss := crlIssuer(der); iss != nil {
			rd.unreadCRLIssuers = append(rd.unreadCRLIssuers, iss)
		}
		return
	}
	if rd.crlSeen == nil {
		rd.crlSeen = make(map[[sha256.Size]byte]struct{}, len(rd.crls)+1)
		for _, x := range rd.crls {
			rd.crlSeen[sha256.Sum256(x.Raw)] = struct{}{}
		}
	}
	sum := sha256.Sum256(l.Raw)
	if _, dup := rd.crlSeen[sum]; dup {
		return
	}
	rd.crlSeen[sum] = struct{}{}
	rd.crls = append(rd.crls, l)
}

func (rd *revocationData) warn(format string, a ...any) {
	msg := fmt.Sprintf(format, a...)
	for _, w := range rd.warnings {
		if w == msg {
			return
		}
	}
	rd.warnings = append(rd.warnings, msg)
}

// CheckRevocation implements path.RevocationChecker.
func (rd *revocationData) CheckRevocation(chain []*x509.Certificate, i int, at time.Time, v *path.Validator) *path.Error {
	if rd.policy == RevocationIgnored {
		return nil
	}
	c, issuer := chain[i], chain[i-1]
	if hasNoCheck(c) {
		return nil
	}
	res := rd.check(c, issuer, chain, i, at, v)
	// No information, or only information too old to tell the status at
	// the time: ask the responder before giving up (TRY_LATER).
	if res != nil && res.Sub == path.TryLater && rd.online && rd.fetcher != nil {
		crlTried := rd.fetch(c, issuer, false)
		res = rd.check(c, issuer, chain, i, at, v)
		// The responder answered, but not so as to tell the status:
		// "unknown" (RFC 6960 §2.2: the client may try another source),
		// not fresh enough, or by a responder that cannot be relied on.
		// The CRL may still tell; TRY_LATER is for when no source does
		// (EN 319 102-1 §5.2.6).
		if res != nil && res.Sub == path.TryLater && !crlTried {
			rd.fetch(c, issuer, true)
			res = rd.check(c, issuer, chain, i, at, v)
		}
	}
	// A suspension is information, not its absence: the best-effort policy
	// reports it like a revocation.
	if res != nil && res.Sub != path.Revoked && !res.Suspended() && rd.policy == RevocationBestEffort {
		rd.warn("no usable revocation information for %q", c.Subject.String())
		return nil
	}
	if res == errNoInfo {
		return &path.Error{Sub: path.TryLater, Index: i, Msg: "no usable revocation information for " + c.Subject.String()}
	}
	return res
}

var errNoInfo = &path.Error{Sub: path.TryLater, Index: -1, Msg: "no revocation information"}

// hasNoCheck reports whether c carries id-pkix-ocsp-nocheck (RFC 6960
// §4.2.2.2.1): a delegated OCSP responder whose status is not checked.
func hasNoCheck(c *x509.Certificate) bool {
	for _, e := range c.Extensions {
		if e.Id.Equal(oidOCSPNoCheck) {
			return true
		}
	}
	return false
}

// fetch asks c's OCSP responders, then (when that fails) its CRL
// distribution points; crlOnly skips the responders (their answer did
// not tell the status). crlTried says the CRL was asked for, or need not
// be (the fetch limit is reached, or this fetch failed before for the
// document).
func (rd *revocationData) fetch(c, issuer *x509.Certificate, crlOnly bool) (crlTried bool) {
	// A fetch that failed for this document is not tried again (for its
	// other signatures, candidate paths or the proven signing time): its
	// warnings stand for it.
	kind := []byte{0}
	if crlOnly {
		kind[0] = 1
	}
	key := sha256.Sum256(slices.Concat(c.Raw, issuer.Raw, kind))
	d := docFetchesOf(rd.ctx)
	if d != nil {
		d.mu.Lock()
		failed, seen := d.failed[key]
		d.mu.Unlock()
		if seen {
			for _, w := range failed {
				rd.warn("%s", w)
			}
			return true
		}
	}
	timeout := rd.timeout
	if timeout <= 0 {
		timeout = 10 * time.Second
	}
	deadline := time.Now().Add(timeout)
	if d != nil {
		d.mu.Lock()
		if end := d.until(); end.Before(deadline) {
			deadline = end
		}
		d.mu.Unlock()
	}
	ctx, cancel := context.WithDeadline(rd.ctx, deadline)
	defer cancel()
	var failed []string
	defer func() {
		if d != nil && len(failed) > 0 {
			d.mu.Lock()
			if d.failed == nil {
				d.failed = map[[32]byte][]string{}
			}
			d.failed[key] = failed
			d.mu.Unlock()
		}
	}()
	if len(c.OCSPServer) > 0 && !crlOnly {
		der, err := rd.fetcher.FetchOCSP(ctx, c, issuer)
		if err == nil {
			rd.ocsps = append(rd.ocsps, der)
			return false
		}
		w, stop := rd.fetchFailure("OCSP", "OCSP response", c, err)
		failed = append(failed, w)
		if stop {
			return true
		}
	}
	if len(c.CRLDistributionPoints) > 0 {
		der, err := rd.fetcher.FetchCRL(ctx, c)
		if err == nil {
			rd.addCRL(der)
			failed = nil
		} else {
			w, _ := rd.fetchFailure("the CRL", "CRL", c, err)
			failed = append(failed, w)
		}
	}
	return true
}

// fetchFailure warns that fetching what for c failed (detail names what
// in a detailed warning) and returns the warning; stop says the document's
// fetch limit is reached. A public
// verifier reports only that the fetch could not be done: the location and
// the network error (refused, timed out, an internal address) would tell
// an anonymous caller about networks it cannot see; the operator's log
// has them.
func (rd *revocationData) fetchFailure(detail, what string, c *x509.Certificate, err error) (string, bool) {
	var msg string
	stop := errors.Is(err, ErrFetchLimit)
	switch {
	case stop:
		msg = fmt.Sprintf("the online revocation check of %q was not done: the document reached the limit of online fetches", c.Subject.String())
	case rd.public:
		msg = fmt.Sprintf("the %s for %q could not be fetched online", what, c.Subject.String())
	default:
		msg = fmt.Sprintf("fetching %s for %q: %v", detail, c.Subject.String(), err)
	}
	if rd.public && rd.log != nil {
		rd.log.Warn("online revocation fetch failed", "what", what, "certificate", c.Subject.String(), "err", err)
	}
	rd.warn("%s", msg)
	return msg, stop
}

// fresh reports whether information produced at thisUpdate and valid until
// nextUpdate tells the status at time at: it covers at, it was issued
// after at, or it was issued after the signing time (so it tells the
// status at signing). Information issued after the validation time tells
// the status at it (EN 319 102-1 §5.2.5: fresh is issued no earlier than
// the validation time less the accepted age): a revocation is final and a
// revoked answer carries its time, which the caller compares with at. So
// an answer a responder signs on demand while a validation "now" runs,
// dated in the second after the validation time was taken, is fresh.
// Information without a nextUpdate covers only the time it was issued
// (RFC 6960 §4.2.2.1: newer information is always available; EU DSS asks
// for a nextUpdate): a "good" answer of years ago without one tells
// nothing of a revocation since. Issuance is dated in whole seconds (RFC
// 5280 §5.1.2.4; responders do the same): information dated in the second
// of at, which a validation "now" takes with a fraction, was issued no
// earlier than at (a responder signing on demand without a nextUpdate
// answers in that second).
func (rd *revocationData) fresh(thisUpdate, nextUpdate, at time.Time) bool {
	if !thisUpdate.Before(at.Truncate(time.Second)) || covers(thisUpdate, nextUpdate, at) {
		return true
	}
	return !rd.sigTime.IsZero() && !thisUpdate.Before(rd.sigTime)
}

// covers reports whether information issued at thisUpdate and valid until
// nextUpdate (none: only at its issuance) is current at at.
func covers(thisUpdate, nextUpdate, at time.Time) bool {
	return !thisUpdate.After(at) && (thisUpdate.Equal(at) || !nextUpdate.IsZero() && !nextUpdate.Before(at))
}

// check finds the status of chain[i] (c, issued by issuer) at time at in
// the OCSP responses and CRLs at hand, whatever the order they came in
// (a document lists them as its signer or an attacker chose). A revocation
// dated no later than at, in any of them, is final: REVOKED. Otherwise a
// suspension (certificateHold) dated no later than at is TRY_LATER, unless
// information that the certificate is good was issued later than all the
// information dating the suspension (the hold was lifted since); an answer
// dating a hold or a revocation after at lifts nothing. Otherwise
// information that tells the status at at (good, or held or revoked only
// after it, with a warning) makes it good. An OCSP response that does not
// tell the status (unknown, not fresh enough, or set aside because its
// responder's certificate was not valid when the response was produced,
// is revoked or is of unknown status) leaves it to the other information.
func (rd *revocationData) check(c, issuer *x509.Certificate, chain []*x509.Certificate, i int, at time.Time, v *path.Validator) *path.Error {
	var stale, unusable, unknown *path.Error
	f := finding{at: at}
	for _, der := range rd.ocsps {
		resp, err := rd.parseOCSP(der, c, issuer)
		if err != nil || resp == nil || resp.SerialNumber == nil || resp.SerialNumber.Cmp(c.SerialNumber) != 0 {
			continue
		}
		delegated, ok := delegatedResponder(resp, issuer)
		if !ok {
			continue
		}
		// Information too old to tell the status at at still dates a
		// revocation or a suspension before it (issued before at, it
		// dates nothing after at): a revocation is final, and a
		// suspension stands until information issued later says good.
		if !rd.fresh(resp.ThisUpdate, resp.NextUpdate, at) && (resp.Status != ocsp.Revoked || resp.RevokedAt.After(at)) {
			stale = &path.Error{Sub: path.TryLater, Index: i, Msg: "OCSP response not fresh enough"}
			continue
		}
		if delegated != nil {
			if err := rd.responderStatus(delegated, c, chain, i, at, resp.ProducedAt, v); err != nil {
				unusable = err
				continue
			}
		}
		switch {
		case resp.Status == ocsp.Good:
			if afterExpiry(c, resp.ThisUpdate, resp.Extensions, oidOCSPArchiveCutoff) {
				stale = &path.Error{Sub: path.TryLater, Index: i, Msg: "OCSP response produced after the certificate expired, without an archive cutoff"}
				continue
			}
			f.good(resp.ThisUpdate)
		case resp.Status == ocsp.Revoked && resp.RevocationReason == ocsp.CertificateHold:
			f.hold(resp.RevokedAt, resp.ThisUpdate, path.SuspendedError(i, resp.RevokedAt, "OCSP"))
		case resp.Status == ocsp.Revoked:
			if !resp.RevokedAt.After(at) {
				return &path.Error{Sub: path.Revoked, Index: i, RevokedAt: resp.RevokedAt, InvalidSince: path.InvalidityDate(resp.Extensions), Subject: c.Subject.String(),
					Msg: fmt.Sprintf("revoked at %s (OCSP)", resp.RevokedAt.UTC().Format(time.RFC3339))}
			}
			f.revokedAfter(resp.RevokedAt, path.InvalidityDate(resp.Extensions))
		default:
			unknown = &path.Error{Sub: path.TryLater, Index: i, Msg: `the OCSP responder answered "unknown"`}
		}
	}
	// Delta CRLs are read with their complete CRL (path.CRLChecker
	// decides which delta may be combined with it), never alone.
	var deltas []*x509.RevocationList
	for _, crl := range rd.crls {
		if bytes.Equal(crl.RawIssuer, c.RawIssuer) && path.IsDeltaCRL(crl) {
			deltas = append(deltas, crl)
		}
	}
	// The deltas' signers are checked once for all the complete CRLs.
	deltaSigners := map[*x509.RevocationList]*path.Error{}
	deltaLists := false
	for _, d := range deltas {
		deltaLists = deltaLists || listsSerial(d, c)
	}
	for _, crl := range rd.crls {
		if !bytes.Equal(crl.RawIssuer, c.RawIssuer) {
			continue
		}
		if path.IsDeltaCRL(crl) {
			if stale == nil {
				stale = &path.Error{Sub: path.TryLater, Index: i, Msg: "no revocation information"}
			}
			continue
		}
		// A complete CRL that lists no certificate with c's serial, nor
		// does a delta, can only say good as of its thisUpdate: nothing
		// when information issued no earlier says good already. Skipping
		// it spares checking its signature, hashing all of a large CRL
		// (about 1 ms for 20,000 entries), for each certificate, path and
		// validation time, when an OCSP answer told the status.
		if f.isGood && !crl.ThisUpdate.After(f.goodInfo) && !deltaLists && !listsSerial(crl, c) {
			continue
		}
		// The CRL is read at at when it covers it; else at its thisUpdate
		// when issued after at; else (issued before at, and current only
		// until its nextUpdate) at its nextUpdate, or its thisUpdate
		// without one. Entries dated after the time read (a CA may
		// backdate a thisUpdate) and no later than at still count
		// (ValidationTime): a CRL fresh as issued after the proven
		// signing time must not pass a signer it shows revoked before at;
		// and a hold dated no later than at stands against a delta's
		// revocation dated after at.
		t := at
		fresh := rd.fresh(crl.ThisUpdate, crl.NextUpdate, at)
		switch {
		case covers(crl.ThisUpdate, crl.NextUpdate, at):
		case crl.ThisUpdate.After(at) || crl.NextUpdate.IsZero():
			t = crl.ThisUpdate
		default:
			t = crl.NextUpdate
		}
		one := &path.CRLChecker{CRLs: append([]*x509.RevocationList{crl}, deltas...), Pool: rd.pool, DeltaSigners: deltaSigners, ValidationTime: at}
		err := one.CheckRevocation(chain, i, t, v)
		// A CRL too old to tell the status at at still dates a revocation
		// or a suspension before it, as an OCSP response does.
		if !fresh && (err == nil || err.Sub != path.Revoked && !err.Suspended()) {
			stale = &path.Error{Sub: path.TryLater, Index: i, Msg: "CRL not fresh enough"}
			continue
		}
		switch {
		case err == nil:
			if afterExpiry(c, crl.ThisUpdate, crl.Extensions, oidExpiredCertsOnCRL) {
				stale = &path.Error{Sub: path.TryLater, Index: i, Msg: "CRL issued after the certificate expired, without expired certificates on it"}
				continue
			}
			f.good(crl.ThisUpdate)
		case err.Sub == path.Revoked:
			if !err.RevokedAt.After(at) {
				return err
			}
			f.revokedAfter(err.RevokedAt, err.InvalidSince)
		case err.Suspended():
			// A delta read with the CRL dates the hold as of its own
			// thisUpdate: a "good" issued before it lifts nothing.
			issued := crl.ThisUpdate
			if err.HeldAsOf.After(issued) {
				issued = err.HeldAsOf
			}
			f.hold(err.SuspendedAt, issued, err)
		default:
			stale = err
		}
	}
	if held, known := f.verdict(); held != nil {
		return held
	} else if known {
		f.warn(rd, c)
		return nil
	}
	switch {
	case unusable != nil:
		return unusable
	case unknown != nil:
		return unknown
	case stale != nil:
		return stale
	}
	return errNoInfo
}

// listsSerial reports whether crl has an entry with c's serial number (for
// c or, in an indirect CRL, for another issuer's certificate).
func listsSerial(crl *x509.RevocationList, c *x509.Certificate) bool {
	for k := range crl.RevokedCertificateEntries {
		if s := crl.RevokedCertificateEntries[k].SerialNumber; s != nil && s.Cmp(c.SerialNumber) == 0 {
			return true
		}
	}
	return false
}

// finding gathers what the information at hand says of one certificate's
// status at the validation time at, so that the verdict does not depend on
// the order of the information (a revocation dated no later than at is
// returned at once by check: it is final).
type finding struct {
	at time.Time
	// held is the earliest suspension dated no later than at; heldInfo is
	// when the latest information dating such a suspension was issued.
	held     *path.Error
	heldInfo time.Time
	// isGood says some information says good; goodInfo is when the latest
	// of it was issued.
	isGood   bool
	goodInfo time.Time
	// after are the holds and revocations dated after at: the status at at
	// is known (good), with a warning for each.
	after []afterAt
}

// afterAt is a hold (zero revokedAt) or a revocation dated after the
// validation time.
type afterAt struct {
	heldAt, revokedAt, invalidSince time.Time
}

// good records information issued at issued that says good.
func (f *finding) good(issued time.Time) {
	if !f.isGood || issued.After(f.goodInfo) {
		f.isGood, f.goodInfo = true, issued
	}
}

// hold records information issued at issued that dates a suspension at
// heldAt (err reports it, when heldAt is no later than at). Information
// dating a hold was produced after it, whatever its thisUpdate says (a CA
// may backdate a CRL's thisUpdate and list entries dated after it): only
// a "good" issued after the hold itself may have lifted it.
func (f *finding) hold(heldAt, issued time.Time, err *path.Error) {
	if heldAt.After(f.at) {
		f.after = append(f.after, afterAt{heldAt: heldAt})
		return
	}
	if heldAt.After(issued) {
		issued = heldAt
	}
	if f.held == nil || heldAt.Before(f.held.SuspendedAt) {
		f.held = err
	}
	if issued.After(f.heldInfo) {
		f.heldInfo = issued
	}
}

// revokedAfter records a revocation dated after at.
func (f *finding) revokedAfter(revokedAt, invalidSince time.Time) {
	f.after = append(f.after, afterAt{revokedAt: revokedAt, invalidSince: invalidSince})
}

// verdict returns the suspension that stands (no information saying
// good was issued after all that dates it), or whether the status at at
// is known to be good.
func (f *finding) verdict() (held *path.Error, known bool) {
	if f.held != nil && !(f.isGood && f.goodInfo.After(f.heldInfo)) {
		return f.held, false
	}
	return nil, f.isGood || f.held != nil || len(f.after) > 0
}

// warn reports, for a certificate found good at f.at, the holds and
// revocations dated after it.
func (f *finding) warn(rd *revocationData, c *x509.Certificate) {
	for _, a := range f.after {
		if a.revokedAt.IsZero() {
			rd.warnHoldAfter(c, a.heldAt, f.at)
		} else {
			rd.warnRevokedAfter(c, a.revokedAt, a.invalidSince, f.at)
		}
	}
}

// warnRevokedAfter warns that c was revoked at revokedAt, after at, the
// time it was validated at; and, when the revocation information says so
// (invalidityDate, RFC 5280 §5.3.2), that the CA states the key was
// invalid since a date not after at. The verdict stays EN 319 102-1's,
// which judges by the revocation time; the report must not hide what the
// CA states.
func (rd *revocationData) warnRevokedAfter(c *x509.Certificate, revokedAt, invalidSince, at time.Time) {
	rd.warn("%q was revoked at %s, after %s, the time it was validated at", c.Subject.String(),
		revokedAt.UTC().Format(time.RFC3339), at.UTC().Format(time.RFC3339))
	if !invalidSince.IsZero() && !invalidSince.After(at) {
		rd.warn("%s", invalidityWarning(c.Subject.String(), invalidSince, revokedAt,
			at.UTC().Format(time.RFC3339)+", the time it was validated at"))
	}
}

// invalidityWarning says that the CA states (invalidityDate) that the key
// of the certificate of subject was invalid since invalidSince, before
// when (a time and what it is: the time of validation, which a time-stamp
// may have proven, or the claimed signing time), although it revoked the
// certificate only at revokedAt. It names the time for what it is: the
// CA's statement is about dates, not about the signature.
func invalidityWarning(subject string, invalidSince, revokedAt time.Time, when string) string {
	return fmt.Sprintf("the CA states that the key of %q was invalid since %s (invalidityDate: known or suspected compromised, or the certificate otherwise invalid), before %s; it revoked the certificate only at %s, and the verdict is judged by the revocation time",
		subject, invalidSince.UTC().Format(time.RFC3339), when, revokedAt.UTC().Format(time.RFC3339))
}

// warnHoldAfter warns that c was put on hold at heldAt, after at, the
// time it was validated at (no reason to reject, as for a revocation).
func (rd *revocationData) warnHoldAfter(c *x509.Certificate, heldAt, at time.Time) {
	rd.warn("%q was put on hold (suspended) at %s, after %s, the time it was validated at", c.Subject.String(),
		heldAt.UTC().Format(time.RFC3339), at.UTC().Format(time.RFC3339))
}

var (
	// oidExpiredCertsOnCRL is the CRL extension (X.509 §9.6.2.9) dating
	// from when the CRL keeps the entries of expired certificates.
	oidExpiredCertsOnCRL = asn1.ObjectIdentifier{2, 5, 29, 60}
	// oidOCSPArchiveCutoff is the OCSP single extension (RFC 6960
	// §4.4.4) dating from when the responder keeps the status of expired
	// certificates.
	oidOCSPArchiveCutoff = asn1.ObjectIdentifier{1, 3, 6, 1, 5, 5, 7, 48, 1, 6}
)

// afterExpiry reports whether information issued at issued cannot tell
// that c was not revoked: it was issued after c expired, and its issuer
// does not say (extension id, a date no later than c's expiry) that it
// keeps the status of certificates expired since then. A CA drops an
// expired certificate's entry from its CRLs (RFC 5280 §3.3) and a
// responder may answer "good" for it, so a certificate revoked before the
// validation time would look good in information issued after it expired
// (as EU DSS: such information is not acceptable). A revocation it shows
// still counts.
func afterExpiry(c *x509.Certificate, issued time.Time, exts []pkix.Extension, id asn1.ObjectIdentifier) bool {
	if !issued.After(c.NotAfter) {
		return false
	}
	for _, e := range exts {
		if !e.Id.Equal(id) {
			continue
		}
		var kept time.Time
		if rest, err := asn1.Unmarshal(e.Value, &kept); err == nil && len(rest) == 0 && !kept.After(c.NotAfter) {
			return false
		}
	}
	return true
}

// delegatedResponder returns the delegated responder certificate that
// signed resp, an OCSP response on a certificate issued by issuer (nil
// when the CA signed it itself); ok is false when resp names a responder
// certificate that cannot answer for issuer's certificates: one the CA
// did not issue, or without the OCSPSigning extended key usage (RFC 6960
// §4.2.2.2).
func delegatedResponder(resp *ocsp.Response, issuer *x509.Certificate) (r *x509.Certificate, ok bool) {
	if resp.Certificate == nil || resp.Certificate.Equal(issuer) {
		return nil, true
	}
	if err := path.ExtKeyUsage(resp.Certificate, []string{"OCSPSigning"}); err != nil || len(resp.Certificate.ExtKeyUsage) == 0 {
		return nil, false
	}
	if !bytes.Equal(resp.Certificate.RawIssuer, issuer.RawSubject) {
		return nil, false
	}
	return resp.Certificate, true
}

// responderStatus checks the certificate of the delegated responder r
// that answered for chain[i] (c) in a response produced at produced.
// First its validity period: a responder certificate that had expired or
// was not yet valid when the response was produced cannot vouch for it
// (RFC 6960 §4.2.2.2, EN 319 102-1), nocheck or not. Then, as RFC 6960
// §4.2.2.2.1 asks of a responder certificate without id-pkix-ocsp-nocheck,
// its status: like any certificate's, with the CRLs and OCSP responses at
// hand or fetched, at the validation time or, when later, the time the
// response was produced. A responder out of its validity period, revoked,
// or whose status is unknown (under the default policy), makes its
// responses unusable: it returns the TRY_LATER error saying why, and
// warns; the status of c must then come from elsewhere (EN 319 102-1
// §5.2.6).
func (rd *revocationData) responderStatus(r, c *x509.Certificate, chain []*x509.Certificate, i int, at, produced time.Time, v *path.Validator) *path.Error {
	if produced.Before(r.NotBefore) || produced.After(r.NotAfter) {
		p := produced.UTC().Format(time.RFC3339)
		rd.warn("the OCSP response for %q is not used: its responder's certificate %q was not valid at %s, when the response was produced", c.Subject.String(), r.Subject.String(), p)
		return &path.Error{Sub: path.TryLater, Index: i, Msg: fmt.Sprintf("the OCSP responder's certificate %q was not valid at %s, when the response was produced", r.Subject.String(), p)}
	}
	if hasNoCheck(r) {
		return nil
	}
	if rd.responderCheck {
		// A responder's own status comes from CRLs, from its CA or from a
		// responder that needs no check: not from itself, nor from another
		// responder that would need checking in turn.
		return &path.Error{Sub: path.TryLater, Index: i, Msg: "OCSP response by a responder whose status is not checked"}
	}
	t := at
	if produced.After(t) {
		t = produced
	}
	rd.responderCheck = true
	err := rd.CheckRevocation(append(chain[:i:i], r), i, t, v)
	rd.responderCheck = false
	if err == nil {
		return nil
	}
	if err.Suspended() {
		rd.warn("the OCSP response for %q is not used: its responder's certificate %q is on hold (suspended)", c.Subject.String(), r.Subject.String())
		return &path.Error{Sub: path.TryLater, Index: i, Msg: fmt.Sprintf("the OCSP responder's certificate %q is on hold (suspended)", r.Subject.String())}
	}
	if err.Sub == path.Revoked {
		rd.warn("the OCSP response for %q is not used: its responder's certificate %q is revoked", c.Subject.String(), r.Subject.String())
		return &path.Error{Sub: path.TryLater, Index: i, Msg: fmt.Sprintf("the OCSP responder's certificate %q is revoked", r.Subject.String())}
	}
	rd.warn("the OCSP response for %q is not used: the revocation status of its responder's certificate %q is unknown", c.Subject.String(), r.Subject.String())
	return &path.Error{Sub: path.TryLater, Index: i, Msg: fmt.Sprintf("the revocation status of the OCSP responder's certificate %q is unknown", r.Subject.String())}
}

// maxLTDepth bounds the certificate path covers walks.
const maxLTDepth = 16

// covers reports whether revocation values are available for every
// certificate of cert's path (issuers found in pool or among anchors) below
// a trust anchor or a self-signed root, id-pkix-ocsp-nocheck certificates
// excepted, and for the certificate of a delegated OCSP responder without
// id-pkix-ocsp-nocheck that answered for one of them (hasInfo): the B-LT
// condition of EN 319 142-1 §6.3 (validation data for the whole path, as
// EU DSS checks it), independent of whether the information says good.
func (rd *revocationData) covers(cert *x509.Certificate, pool, anchors []*x509.Certificate) bool {
	isAnchor := func(c *x509.Certificate) bool {
		for _, a := range anchors {
			if bytes.Equal(a.RawSubject, c.RawSubject) && bytes.Equal(a.RawSubjectPublicKeyInfo, c.RawSubjectPublicKeyInfo) {
				return true
			}
		}
		return false
	}
	candidates := slices.Concat(anchors, pool)
	c := cert
	for depth := 0; depth < maxLTDepth; depth++ {
		if isAnchor(c) || bytes.Equal(c.RawIssuer, c.RawSubject) {
			return depth > 0
		}
		var issuer *x509.Certificate
		for _, p := range candidates {
			if bytes.Equal(p.RawSubject, c.RawIssuer) && (len(c.AuthorityKeyId) == 0 || bytes.Equal(c.AuthorityKeyId, p.SubjectKeyId)) {
				issuer = p
				break
			}
		}
		if issuer == nil || !rd.hasInfo(c, issuer, false) {
			return false
		}
		c = issuer
	}
	return false
}

// hasInfo reports whether the values at hand hold revocation information
// for c, issued by issuer: a complete CRL of issuer (even one that could
// not be read), or an OCSP response on c signed by the CA itself, by a delegated
// responder with id-pkix-ocsp-nocheck, or by a delegated responder without
// it whose own revocation information is at hand too (RFC 6960
// §4.2.2.2.1, EN 319 142-1 §6.3: the data needed to validate the
// responder's certificate). As in validation, a responder's information
// comes from a CRL, from the CA or from a responder that needs no check;
// forResponder says c is such a responder.
func (rd *revocationData) hasInfo(c, issuer *x509.Certificate, forResponder bool) bool {
	if hasNoCheck(c) {
		return true
	}
	for _, der := range rd.ocsps {
		resp, err := rd.parseOCSP(der, c, issuer)
		if err != nil || resp.SerialNumber == nil || resp.SerialNumber.Cmp(c.SerialNumber) != 0 {
			continue
		}
		r, ok := delegatedResponder(resp, issuer)
		if !ok {
			continue
		}
		if r == nil || hasNoCheck(r) || !forResponder && rd.hasInfo(r, issuer, true) {
			return true
		}
	}
	for _, crl := range rd.crls {
		// A delta CRL alone tells nothing: it counts with its complete CRL.
		if bytes.Equal(crl.RawIssuer, c.RawIssuer) && !path.IsDeltaCRL(crl) {
			return true
		}
	}
	for _, iss := range rd.unreadCRLIssuers {
		if bytes.Equal(iss, c.RawIssuer) {
			return true
		}
	}
	return false
}

// crlIssuer returns the raw issuer name of a DER CertificateList that
// x509.ParseRevocationList refused, or nil when even that is unreadable.
func crlIssuer(der []byte) []byte {
	var list, tbs asn1.RawValue
	if _, err := asn1.Unmarshal(der, &list); err != nil {
		return nil
	}
	if _, err := asn1.Unmarshal(list.Bytes, &tbs); err != nil {
		return nil
	}
	rest := tbs.Bytes
	var fields [3]asn1.RawValue // [version,] signature, issuer
	for i := range fields {
		var err error
		if rest, err = asn1.Unmarshal(rest, &fields[i]); err != nil {
			return nil
		}
	}
	if fields[0].Tag == asn1.TagInteger {
		return fields[2].FullBytes
	}
	return fields[1].FullBytes
}
