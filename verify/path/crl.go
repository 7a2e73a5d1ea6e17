package path

import (
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"errors"
	"math/big"
	"time"

	"golang.org/x/crypto/cryptobyte"
	cbasn1 "golang.org/x/crypto/cryptobyte/asn1"
)

// CRLChecker checks revocation with a fixed set of CRLs (RFC 5280 §6.3),
// indirect CRLs and delta CRLs included: a delta CRL is read only with a
// complete CRL it may be combined with (see delta), never alone.
type CRLChecker struct {
	CRLs []*x509.RevocationList
	// Pool holds certificates that may have signed CRLs (besides the
	// certificate's own issuer).
	Pool []*x509.Certificate
	// Algorithms constrains CRL signatures (nil: the validator's).
	Algorithms *AlgorithmPolicy
	// DeltaSigners, when not nil, remembers for each delta CRL whether its
	// signer was found (nil) or why not, so that the delta CRLs offered
	// with each of many complete CRLs are verified once: a document with B
	// genuine complete CRLs and D forged deltas cost B×D signature checks.
	// CRLCheckers may share it only while they check the same certificate
	// of the same path with the same Validator (the outcome depends on
	// them); without it each CheckRevocation keeps its own.
	DeltaSigners map[*x509.RevocationList]*Error
	// ValidationTime, when set, is the time the status is asked for, when
	// CheckRevocation reads the CRLs at another time (the time a CRL is
	// current at, which the caller chooses). Entries dated up to the later
	// of the two count: a CRL read at a time before the validation time (it
	// covers that time no longer) still dates a revocation or a hold after
	// that time and no later than the validation time (a CA may list
	// entries dated after its thisUpdate). A hold dated no later than the
	// validation time stands unless a delta lifts it: a revocation the
	// delta dates after the validation time does not, even when it is
	// dated no later than the time read (a CRL issued after the validation
	// time is read at its thisUpdate).
	ValidationTime time.Time
}

var (
	oidIDP        = asn1.ObjectIdentifier{2, 5, 29, 28}
	oidDeltaInd   = asn1.ObjectIdentifier{2, 5, 29, 27}
	oidCRLDP      = asn1.ObjectIdentifier{2, 5, 29, 31}
	knownCRLExts  = map[string]bool{"2.5.29.20": true, "2.5.29.35": true, "2.5.29.28": true, "2.5.29.27": true, "2.5.29.46": true}
	knownCRLEntry = map[string]bool{"2.5.29.21": true, "2.5.29.24": true}
)

type idp struct {
	fullNames []generalName
	relative  []byte // DER RelativeDistinguishedName (SET), if nameRelativeToCRLIssuer
	onlyUser  bool
	onlyCA    bool
	reasons   uint16 // onlySomeReasons bits (0 = all)
	indirect  bool
	onlyAttr  bool
	raw       []byte
}

// allReasons has bits 1..8 set (keyCompromise .. aACompromise).
const allReasons uint16 = 0x1fe

func parseIDP(der []byte) (*idp, error) {
	in := cryptobyte.String(der)
	var seq cryptobyte.String
	if !in.ReadASN1(&seq, cbasn1.SEQUENCE) {
		return nil, errors.New("malformed issuingDistributionPoint")
	}
	out := &idp{raw: der}
	for !seq.Empty() {
		var body cryptobyte.String
		var tag cbasn1.Tag
		if !seq.ReadAnyASN1(&body, &tag) {
			return nil, errors.New("malformed issuingDistributionPoint field")
		}
		switch int(tag & 0x1f) {
		case 0:
			names, rel, err := parseDPName(body)
			if err != nil {
				return nil, err
			}
			out.fullNames, out.relative = names, rel
		case 1:
			out.onlyUser = boolBody(body)
		case 2:
			out.onlyCA = boolBody(body)
		case 3:
			out.reasons = reasonBits(body)
		case 4:
			out.indirect = boolBody(body)
		case 5:
			out.onlyAttr = boolBody(body)
		}
	}
	return out, nil
}

// reasonBits maps a ReasonFlags BIT STRING body to bits (bit n = reason n).
func reasonBits(body []byte) uint16 {
	var out uint16
	if len(body) < 2 {
		return 0
	}
	for i, b := range body[1:] {
		for j := 0; j < 8; j++ {
			if b&(0x80>>j) != 0 && i*8+j < 16 {
				out |= 1 << (i*8 + j)
			}
		}
	}
	return out
}

func boolBody(b cryptobyte.String) bool { return len(b) == 1 && b[0] != 0 }

// parseDPName reads a DistributionPointName ([0] fullName / [1] relative).
func parseDPName(body cryptobyte.String) ([]generalName, []byte, error) {
	var inner cryptobyte.String
	var tag cbasn1.Tag
	if !body.ReadAnyASN1(&inner, &tag) {
		return nil, nil, errors.New("malformed distribution point name")
	}
	if int(tag&0x1f) == 1 {
		// Re-tag the RDN as a SET for later concatenation with a Name.
		b := cryptobyte.NewBuilder(nil)
		b.AddASN1(cbasn1.SET, func(b *cryptobyte.Builder) { b.AddBytes(inner) })
		rdn, err := b.Bytes()
		return nil, rdn, err
	}
	var names []generalName
	for !inner.Empty() {
		g, err := readGeneralName(&inner)
		if err != nil {
			return nil, nil, err
		}
		names = append(names, g)
	}
	return names, nil, nil
}

// appendRDN returns the Name name with one more RDN (as a directoryName).
func appendRDN(name, rdn []byte) generalName {
	in := cryptobyte.String(name)
	var body cryptobyte.String
	if !in.ReadASN1(&body, cbasn1.SEQUENCE) {
		return generalName{}
	}
	b := cryptobyte.NewBuilder(nil)
	b.AddASN1(cbasn1.SEQUENCE, func(b *cryptobyte.Builder) {
		b.AddBytes(body)
		b.AddBytes(rdn)
	})
	der, _ := b.Bytes()
	return generalName{tag: gnDir, data: der}
}

// distPoint is one CRL distribution point of a certificate.
type distPoint struct {
	names     []generalName
	relative  []byte
	crlIssuer []generalName
}

// certDPs lists c's CRL distribution points and whether c has the extension.
func certDPs(c *x509.Certificate) ([]distPoint, bool) {
	for _, e := range c.Extensions {
		if !e.Id.Equal(oidCRLDP) {
			continue
		}
		var out []distPoint
		in := cryptobyte.String(e.Value)
		var seq cryptobyte.String
		if !in.ReadASN1(&seq, cbasn1.SEQUENCE) {
			return nil, true
		}
		for !seq.Empty() {
			var dp cryptobyte.String
			if !seq.ReadASN1(&dp, cbasn1.SEQUENCE) {
				break
			}
			var d distPoint
			var name, issuers cryptobyte.String
			var has bool
			if dp.ReadOptionalASN1(&name, &has, cbasn1.Tag(0).ContextSpecific().Constructed()) && has {
				d.names, d.relative, _ = parseDPName(name)
			}
			var skip cryptobyte.String
			dp.ReadOptionalASN1(&skip, &has, cbasn1.Tag(1).ContextSpecific()) //nolint:errcheck // reasons
			if dp.ReadOptionalASN1(&issuers, &has, cbasn1.Tag(2).ContextSpecific().Constructed()) && has {
				for !issuers.Empty() {
					g, err := readGeneralName(&issuers)
					if err != nil {
						break
					}
					d.crlIssuer = append(d.crlIssuer, g)
				}
			}
			out = append(out, d)
		}
		return out, true
	}
	return nil, false
}

func dpMatch(a, b []generalName) bool {
	for _, x := range a {
		for _, y := range b {
			if x.tag != y.tag {
				continue
			}
			if x.tag == gnDir {
				if nameEqual(x.data, y.data) {
					return true
				}
			} else if string(x.data) == string(y.data) {
				return true
			}
		}
	}
	return false
}

// crlApplies decides whether crl (with idp p, possibly nil) is a CRL for c
// (RFC 5280 §6.3.3 (b)): some distribution point of c must name the CRL's
// issuer (its cRLIssuer, with an indirect CRL, or else c's issuer) and,
// when the CRL has an IDP distribution point, one of the same names.
func crlApplies(crl *x509.RevocationList, p *idp, c *x509.Certificate) bool {
	var idpNames []generalName
	if p != nil {
		idpNames = p.fullNames
		if p.relative != nil {
			idpNames = []generalName{appendRDN(crl.RawIssuer, p.relative)}
		}
	}
	dps, hasDP := certDPs(c)
	if !hasDP {
		if !nameEqual(crl.RawIssuer, c.RawIssuer) {
			return false
		}
		return len(idpNames) == 0 || dpMatch(idpNames, []generalName{{tag: gnDir, data: c.RawIssuer}})
	}
	for _, d := range dps {
		if len(d.crlIssuer) > 0 {
			if p == nil || !p.indirect || !dpMatch(d.crlIssuer, []generalName{{tag: gnDir, data: crl.RawIssuer}}) {
				continue
			}
		} else if !nameEqual(crl.RawIssuer, c.RawIssuer) {
			continue
		}
		if len(idpNames) == 0 {
			return true
		}
		names := d.names
		if d.relative != nil {
			base := c.RawIssuer
			if len(d.crlIssuer) > 0 && d.crlIssuer[0].tag == gnDir {
				base = d.crlIssuer[0].data
			}
			names = []generalName{appendRDN(base, d.relative)}
		}
		if len(names) == 0 || dpMatch(idpNames, names) {
			return true
		}
	}
	return false
}

var oidCertIssuer = asn1.ObjectIdentifier{2, 5, 29, 29}

// entryFor finds c's entry in crl, following certificateIssuer in indirect CRLs.
func entryFor(crl *x509.RevocationList, indirect bool, c *x509.Certificate) *x509.RevocationListEntry {
	current := crl.RawIssuer
	for k := range crl.RevokedCertificateEntries {
		e := &crl.RevokedCertificateEntries[k]
		if indirect {
			for _, x := range e.Extensions {
				if x.Id.Equal(oidCertIssuer) {
					in := cryptobyte.String(x.Value)
					var seq cryptobyte.String
					if in.ReadASN1(&seq, cbasn1.SEQUENCE) {
						if g, err := readGeneralName(&seq); err == nil && g.tag == gnDir {
							current = g.data
						}
					}
				}
			}
		}
		if e.SerialNumber != nil && e.SerialNumber.Cmp(c.SerialNumber) == 0 && nameEqual(current, c.RawIssuer) {
			return e
		}
	}
	return nil
}

// CheckRevocation implements RevocationChecker.
func (cc *CRLChecker) CheckRevocation(chain []*x509.Certificate, i int, at time.Time, v *Validator) *Error {
	c := chain[i]
	alg := cc.Algorithms
	if alg == nil {
		alg = v.opts.Algorithms
	}
	var lastErr, held *Error
	var reasons uint16
	signers := cc.DeltaSigners
	if signers == nil {
		signers = map[*x509.RevocationList]*Error{}
	}
	until, asked := at, at
	if !cc.ValidationTime.IsZero() {
		asked = cc.ValidationTime
		if asked.After(at) {
			until = asked
		}
	}
	for _, crl := range cc.CRLs {
		if IsDeltaCRL(crl) {
			continue
		}
		var p *idp
		for _, e := range crl.Extensions {
			if e.Id.Equal(oidIDP) {
				var err error
				if p, err = parseIDP(e.Value); err != nil {
					lastErr = fail(TryLater, i, "CRL: %v", err)
				}
			}
		}
		if !crlApplies(crl, p, c) {
			continue
		}
		scope := allReasons
		if p != nil {
			isCA := c.BasicConstraintsValid && c.IsCA
			if p.onlyUser && isCA {
				lastErr = fail(TryLater, i, "CRL only contains end-entity certificates and certificate is a CA")
				continue
			}
			if p.onlyCA && !isCA {
				lastErr = fail(TryLater, i, "CRL only contains CA certificates")
				continue
			}
			if p.onlyAttr {
				lastErr = fail(TryLater, i, "CRL only contains attribute certificates")
				continue
			}
			if p.reasons != 0 {
				scope = p.reasons & allReasons
			}
		}
		if err := cc.checkSigner(crl, chain, i, alg, v); err != nil {
			lastErr = err
			continue
		}
		if unknown := unknownExt(crl.Extensions, knownCRLExts); unknown != "" {
			lastErr = fail(TryLater, i, "unrecognised critical CRL extension %s", unknown)
			continue
		}
		if err := crlNumberOK(crl); err != "" {
			lastErr = fail(TryLater, i, "%s", err)
			continue
		}
		if crl.ThisUpdate.After(at) {
			lastErr = fail(TryLater, i, "CRL issued after the validation time")
			continue
		}
		if !crl.NextUpdate.IsZero() && crl.NextUpdate.Before(at) {
			lastErr = fail(TryLater, i, "CRL is not recent enough (nextUpdate %s)", crl.NextUpdate.UTC().Format(time.RFC3339))
			continue
		}
		e := entryFor(crl, p != nil && p.indirect, c)
		if e != nil {
			if unknown := unknownExt(e.Extensions, knownCRLEntry); unknown != "" {
				lastErr = fail(TryLater, i, "unrecognised critical CRL entry extension %s", unknown)
				continue
			}
			if e.ReasonCode == reasonRemoveFromCRL {
				// RFC 5280 §5.3.1: removeFromCRL is for delta CRLs only; in
				// a complete CRL it says nothing that can be relied on.
				lastErr = fail(TryLater, i, "a complete CRL lists the certificate with reason removeFromCRL (RFC 5280: delta CRLs only)")
				continue
			}
		}
		// A current delta CRL for this base overrides its status (an entry
		// with removeFromCRL lifts a suspension), unless the base lists a
		// revocation: that is final (a delta's removeFromCRL may also mean
		// only that the certificate expired, RFC 5280 §5.3.1), so no delta,
		// nor the lack of a current one, changes it.
		revoked := e != nil && e.ReasonCode != reasonCertificateHold && e.ReasonCode != reasonRemoveFromCRL
		// Without a current delta the complete CRL cannot say good, but a
		// hold it dates stands as a revocation does: only information
		// issued after it may lift it (a genuine delta no longer current,
		// replayed, must not hide it).
		asOf := crl.ThisUpdate
		heldThen := e != nil && e.ReasonCode == reasonCertificateHold && !e.RevocationTime.After(until)
		if d, derr := cc.delta(crl, p, chain, i, alg, at, v, signers); derr != nil && !revoked {
			if !heldThen {
				lastErr = derr
				continue
			}
		} else if d != nil && !revoked {
			// The complete CRL and its delta tell the status as of the
			// delta: a hold the delta leaves (or lists) stood then.
			if d.ThisUpdate.After(asOf) {
				asOf = d.ThisUpdate
			}
			if de := entryFor(d, p != nil && p.indirect, c); de != nil {
				if unknown := unknownExt(de.Extensions, knownCRLEntry); unknown != "" {
					lastErr = fail(TryLater, i, "unrecognised critical delta CRL entry extension %s", unknown)
					continue
				}
				// A hold at the validation time stands unless the delta
				// lifts it: a revocation dated after that time does not.
				if e == nil || e.ReasonCode != reasonCertificateHold || e.RevocationTime.After(asked) ||
					de.ReasonCode == reasonRemoveFromCRL || !de.RevocationTime.After(asked) {
					e = de
				}
			}
		}
		if e != nil && e.ReasonCode != reasonRemoveFromCRL && !e.RevocationTime.After(until) {
			r := entryError(e, c, i)
			if !r.Suspended() {
				return r
			}
			r.HeldAsOf = asOf
			// A suspension may be lifted, a revocation may not: another
			// CRL's revocation still counts, whatever the order.
			if held == nil {
				held = r
			}
			continue
		}
		reasons |= scope
	}
	if held != nil {
		return held
	}
	if reasons == allReasons {
		return nil
	}
	if reasons != 0 {
		return fail(TryLater, i, "the available CRLs do not cover all revocation reasons")
	}
	if lastErr != nil {
		return lastErr
	}
	return fail(TryLater, i, "no revocation information")
}

// CRL entry reason codes (RFC 5280 §5.3.1) that change what an entry means.
const (
	reasonCertificateHold = 6
	reasonRemoveFromCRL   = 8
)

// entryError is what the CRL entry e says of c, path[i], at a time not before
// its date: on hold (suspended: TRY_LATER, EN 319 102-1 §5.2.6, as the
// suspension may be lifted), or revoked.
func entryError(e *x509.RevocationListEntry, c *x509.Certificate, i int) *Error {
	if e.ReasonCode == reasonCertificateHold {
		return SuspendedError(i, e.RevocationTime, "CRL")
	}
	r := fail(Revoked, i, "revoked at %s (reason %d)", e.RevocationTime.UTC().Format(time.RFC3339), e.ReasonCode)
	r.RevokedAt = e.RevocationTime
	r.InvalidSince = InvalidityDate(e.Extensions)
	r.Subject = c.Subject.String()
	return r
}

// SuspendedError is the TRY_LATER error for path[i] on hold (suspended)
// since since, as source ("CRL", "OCSP") says with reason certificateHold:
// EN 319 102-1 §5.2.6, the suspension may be lifted.
func SuspendedError(i int, since time.Time, source string) *Error {
	r := fail(TryLater, i, "on hold (suspended) since %s (%s reason certificateHold): the suspension may be lifted, validate again later",
		since.UTC().Format(time.RFC3339), source)
	r.SuspendedAt = since
	return r
}

var oidInvalidityDate = asn1.ObjectIdentifier{2, 5, 29, 24}

// InvalidityDate returns the invalidityDate (RFC 5280 §5.3.2) among the
// extensions of a CRL entry or of an OCSP single response (RFC 6960
// §4.4.7 allows CRL entry extensions there), or the zero time when there
// is none or it is malformed.
func InvalidityDate(exts []pkix.Extension) time.Time {
	for _, x := range exts {
		if !x.Id.Equal(oidInvalidityDate) {
			continue
		}
		in := cryptobyte.String(x.Value)
		var t time.Time
		if in.ReadASN1GeneralizedTime(&t) && in.Empty() {
			return t
		}
		return time.Time{}
	}
	return time.Time{}
}

var oidCRLNumber = asn1.ObjectIdentifier{2, 5, 29, 20}

func crlNumber(exts []pkix.Extension, id asn1.ObjectIdentifier) (*big.Int, bool) {
	for _, e := range exts {
		if e.Id.Equal(id) {
			n := new(big.Int)
			in := cryptobyte.String(e.Value)
			if in.ReadASN1Integer(n) {
				return n, true
			}
		}
	}
	return nil, false
}

// delta returns the delta CRL to read with the complete CRL base (with
// issuingDistributionPoint p) at time at, if any; an error when only delta
// CRLs for base that are no longer current exist (RFC 5280 §6.3.3: then a
// current one is needed). A delta CRL is combined with base only as RFC
// 5280 §5.2.4 allows: same issuer, same scope, its BaseCRLNumber no
// greater than base's CRL number and its own CRL number greater (so an
// older delta cannot undo what a newer complete CRL says); it must be
// signed by the CRL issuer and carry no unrecognised critical extension.
// A delta that fails these is ignored, as one from anyone else would be:
// it cannot make base unusable. Among the usable ones the highest CRL
// number (the newest) is taken, whatever the order they came in. A delta
// issued after at is current: its entries carry their dates.
// The map signers remembers the outcome of each delta's signer check (see
// CRLChecker.DeltaSigners).
func (cc *CRLChecker) delta(base *x509.RevocationList, p *idp, chain []*x509.Certificate, i int, alg *AlgorithmPolicy, at time.Time, v *Validator, signers map[*x509.RevocationList]*Error) (*x509.RevocationList, *Error) {
	baseNum, ok := crlNumber(base.Extensions, oidCRLNumber)
	if !ok {
		return nil, nil
	}
	var best *x509.RevocationList
	var bestNum *big.Int
	var staleErr *Error
	for _, d := range cc.CRLs {
		if d == base || !IsDeltaCRL(d) || !nameEqual(d.RawIssuer, base.RawIssuer) {
			continue
		}
		var dp *idp
		malformed := false
		for _, e := range d.Extensions {
			if e.Id.Equal(oidIDP) {
				var err error
				if dp, err = parseIDP(e.Value); err != nil {
					malformed = true
				}
			}
		}
		if malformed || (p == nil) != (dp == nil) || (p != nil && dp != nil && string(p.raw) != string(dp.raw)) {
			continue
		}
		baseRef, ok := crlNumber(d.Extensions, oidDeltaInd)
		if !ok || baseRef.Cmp(baseNum) > 0 {
			continue
		}
		num, ok := crlNumber(d.Extensions, oidCRLNumber)
		if !ok || num.Cmp(baseNum) <= 0 || (bestNum != nil && num.Cmp(bestNum) <= 0) {
			continue
		}
		if unknownExt(d.Extensions, knownCRLExts) != "" {
			continue
		}
		serr, seen := signers[d]
		if !seen {
			serr = cc.checkSigner(d, chain, i, alg, v)
			signers[d] = serr
		}
		if serr != nil {
			continue
		}
		if !d.NextUpdate.IsZero() && d.NextUpdate.Before(at) {
			staleErr = fail(TryLater, i, "delta CRL is not recent enough")
			continue
		}
		best, bestNum = d, num
	}
	if best == nil && staleErr != nil {
		return nil, staleErr
	}
	return best, nil
}

// IsDeltaCRL reports whether crl is a delta CRL (it carries the
// deltaCRLIndicator extension, RFC 5280 §5.2.4): one to read with its
// complete CRL, never alone.
func IsDeltaCRL(crl *x509.RevocationList) bool { return hasExt(crl.Extensions, oidDeltaInd) }

func hasExt(exts []pkix.Extension, id asn1.ObjectIdentifier) bool {
	for _, e := range exts {
		if e.Id.Equal(id) {
			return true
		}
	}
	return false
}

func unknownExt(exts []pkix.Extension, known map[string]bool) string {
	for _, e := range exts {
		if e.Critical && !known[e.Id.String()] {
			return e.Id.String()
		}
	}
	return ""
}

// checkSigner finds the CRL signer: the certificate's issuer, or another
// certificate with the same name whose own path validates, authorised for
// cRLSign.
func (cc *CRLChecker) checkSigner(crl *x509.RevocationList, chain []*x509.Certificate, i int, alg *AlgorithmPolicy, v *Validator) *Error {
	issuer := chain[i-1]
	verifyWith := func(s *x509.Certificate) error {
		return alg.VerifySignature(crl.SignatureAlgorithm, s.PublicKey, crl.RawTBSRevocationList, crl.Signature)
	}
	if nameEqual(issuer.RawSubject, crl.RawIssuer) && verifyWith(issuer) == nil {
		if keyUsageLacks(issuer, x509.KeyUsageCRLSign) {
			return fail(TryLater, i, "the CRL issuer is not authorised to sign CRLs")
		}
		return nil
	}
	for _, s := range cc.Pool {
		if s.Equal(issuer) || !nameEqual(s.RawSubject, crl.RawIssuer) || verifyWith(s) != nil {
			continue
		}
		if keyUsageLacks(s, x509.KeyUsageCRLSign) {
			return fail(TryLater, i, "the CRL issuer is not authorised to sign CRLs")
		}
		if s.Equal(chain[i]) && i == len(chain)-1 && v.depth > 0 {
			// An indirect CRL issuer covered by its own CRL, while its path
			// is being validated one level up: no further recursion.
			return nil
		}
		if v.depth > 2 {
			return fail(TryLater, i, "CRL issuer path too deep")
		}
		if _, err := v.Validate(s, cc.Pool...); err != nil {
			return fail(TryLater, i, "the CRL issuer path could not be validated: %v", err)
		}
		return nil
	}
	return fail(TryLater, i, "CRL signature could not be verified")
}

// crlNumberOK enforces RFC 5280 §5.2.3: a CRL carries a non-critical CRL
// number.
func crlNumberOK(crl *x509.RevocationList) string {
	for _, e := range crl.Extensions {
		if e.Id.Equal(oidCRLNumber) {
			if e.Critical {
				return "CRL number marked critical"
			}
			return ""
		}
	}
	return "CRL without a CRL number"
}
