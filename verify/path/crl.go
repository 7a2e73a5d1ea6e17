package path

import (
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"errors"
	"time"

	"golang.org/x/crypto/cryptobyte"
	cbasn1 "golang.org/x/crypto/cryptobyte/asn1"
)

// CRLChecker checks revocation with a fixed set of CRLs (RFC 5280 §6.3,
// without delta CRLs and indirect CRLs, which it never relies on).
type CRLChecker struct {
	CRLs []*x509.RevocationList
	// Pool holds certificates that may have signed CRLs (besides the
	// certificate's own issuer).
	Pool []*x509.Certificate
	// Algorithms constrains CRL signatures (nil: the validator's).
	Algorithms *AlgorithmPolicy
}

var (
	oidIDP        = asn1.ObjectIdentifier{2, 5, 29, 28}
	oidDeltaInd   = asn1.ObjectIdentifier{2, 5, 29, 27}
	oidCRLDP      = asn1.ObjectIdentifier{2, 5, 29, 31}
	knownCRLExts  = map[string]bool{"2.5.29.20": true, "2.5.29.35": true, "2.5.29.28": true, "2.5.29.27": true, "2.5.29.46": true}
	knownCRLEntry = map[string]bool{"2.5.29.21": true, "2.5.29.24": true}
)

type idp struct {
	fullNames      []generalName
	relative       bool
	onlyUser       bool
	onlyCA         bool
	onlySomeReason bool
	indirect       bool
	onlyAttr       bool
}

func parseIDP(der []byte) (*idp, error) {
	in := cryptobyte.String(der)
	var seq cryptobyte.String
	if !in.ReadASN1(&seq, cbasn1.SEQUENCE) {
		return nil, errors.New("malformed issuingDistributionPoint")
	}
	out := &idp{}
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
			out.onlySomeReason = true
		case 4:
			out.indirect = boolBody(body)
		case 5:
			out.onlyAttr = boolBody(body)
		}
	}
	return out, nil
}

func boolBody(b cryptobyte.String) bool { return len(b) == 1 && b[0] != 0 }

// parseDPName reads a DistributionPointName ([0] fullName / [1] relative).
func parseDPName(body cryptobyte.String) ([]generalName, bool, error) {
	var inner cryptobyte.String
	var tag cbasn1.Tag
	if !body.ReadAnyASN1(&inner, &tag) {
		return nil, false, errors.New("malformed distribution point name")
	}
	if int(tag&0x1f) == 1 {
		return nil, true, nil
	}
	var names []generalName
	for !inner.Empty() {
		g, err := readGeneralName(&inner)
		if err != nil {
			return nil, false, err
		}
		names = append(names, g)
	}
	return names, false, nil
}

// certDPNames lists the fullName entries of c's CRL distribution points and
// whether c carries a CRLDP extension at all.
func certDPNames(c *x509.Certificate) ([]generalName, bool) {
	for _, e := range c.Extensions {
		if !e.Id.Equal(oidCRLDP) {
			continue
		}
		var out []generalName
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
			var name cryptobyte.String
			var has bool
			if !dp.ReadOptionalASN1(&name, &has, cbasn1.Tag(0).ContextSpecific().Constructed()) || !has {
				continue
			}
			names, _, err := parseDPName(name)
			if err == nil {
				out = append(out, names...)
			}
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

// CheckRevocation implements RevocationChecker.
func (cc *CRLChecker) CheckRevocation(chain []*x509.Certificate, i int, at time.Time, v *Validator) *Error {
	c, issuer := chain[i], chain[i-1]
	alg := cc.Algorithms
	if alg == nil {
		alg = v.opts.Algorithms
	}
	var lastErr *Error
	covered := false
	for _, crl := range cc.CRLs {
		if !nameEqual(crl.RawIssuer, c.RawIssuer) {
			continue
		}
		if hasExt(crl.Extensions, oidDeltaInd) {
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
		if p != nil {
			if p.indirect {
				continue
			}
			if len(p.fullNames) > 0 {
				names, has := certDPNames(c)
				if has && !dpMatch(p.fullNames, names) {
					continue
				}
				if !has {
					// Without a CRLDP in the cert, the IDP must name the issuer.
					if !dpMatch(p.fullNames, []generalName{{tag: gnDir, data: c.RawIssuer}}) {
						continue
					}
				}
			} else if p.relative {
				continue
			}
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
			if p.onlySomeReason {
				lastErr = fail(TryLater, i, "CRL does not cover all revocation reasons")
				continue
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
		if crl.ThisUpdate.After(at) {
			lastErr = fail(TryLater, i, "CRL issued after the validation time")
			continue
		}
		if !crl.NextUpdate.IsZero() && crl.NextUpdate.Before(at) {
			lastErr = fail(TryLater, i, "CRL is not recent enough (nextUpdate %s)", crl.NextUpdate.UTC().Format(time.RFC3339))
			continue
		}
		entryErr := (*Error)(nil)
		for _, e := range crl.RevokedCertificateEntries {
			if e.SerialNumber == nil || e.SerialNumber.Cmp(c.SerialNumber) != 0 {
				continue
			}
			if unknown := unknownExt(e.Extensions, knownCRLEntry); unknown != "" {
				entryErr = fail(TryLater, i, "unrecognised critical CRL entry extension %s", unknown)
				break
			}
			if e.ReasonCode == 8 { // removeFromCRL
				continue
			}
			if !e.RevocationTime.After(at) {
				r := fail(Revoked, i, "revoked at %s (reason %d)", e.RevocationTime.UTC().Format(time.RFC3339), e.ReasonCode)
				r.RevokedAt = e.RevocationTime
				return r
			}
		}
		if entryErr != nil {
			lastErr = entryErr
			continue
		}
		covered = true
	}
	_ = issuer
	if covered {
		return nil
	}
	if lastErr != nil {
		return lastErr
	}
	return fail(TryLater, i, "no revocation information")
}

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
		if issuer.KeyUsage != 0 && issuer.KeyUsage&x509.KeyUsageCRLSign == 0 {
			return fail(TryLater, i, "the CRL issuer is not authorised to sign CRLs")
		}
		return nil
	}
	for _, s := range cc.Pool {
		if s.Equal(issuer) || !nameEqual(s.RawSubject, crl.RawIssuer) || verifyWith(s) != nil {
			continue
		}
		if s.KeyUsage != 0 && s.KeyUsage&x509.KeyUsageCRLSign == 0 {
			return fail(TryLater, i, "the CRL issuer is not authorised to sign CRLs")
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
