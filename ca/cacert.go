package ca

import (
	"bytes"
	"crypto"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"errors"
	"fmt"
	"maps"
	"slices"
	"sync"
	"time"

	zx509 "github.com/zmap/zcrypto/x509"
	"github.com/zmap/zlint/v3"
	"github.com/zmap/zlint/v3/lint"

	"github.com/thiqa/thiqa/policies"
)

// This file signs CA certificates (the root's, and the issuing CAs' in the
// ceremony and in `thiqa init`) the way leaves are signed: the certificate
// is built and linted under a look-alike issuer holding a throwaway key,
// then the CA key signs exactly the linted TBSCertificate, and the
// signature is checked before the certificate is returned.

// caLinter is the zlint registry for CA certificates, built once.
var caLinter = sync.OnceValues(NewLinter)

// caExpectation is what a CA certificate must hold.
type caExpectation struct {
	pathLen int               // -1: no pathLenConstraint (the root)
	issuer  *x509.Certificate // nil for a self-signed root
}

// lintCA runs zlint (LintSources, warnings refuse) and the CA checks below.
func (l *Linter) lintCA(der []byte, want caExpectation) (*x509.Certificate, error) {
	le := &LintError{}
	fail := func(name, detail string) {
		le.Lints = append(le.Lints, name)
		le.Details = append(le.Details, detail)
	}
	zc, err := zx509.ParseCertificate(der)
	if err != nil {
		return nil, &LintError{Lints: []string{"thiqa_parse_zcrypto"}, Details: []string{err.Error()}}
	}
	rs := zlint.LintCertificateEx(zc, l.registry)
	for _, n := range slices.Sorted(maps.Keys(rs.Results)) {
		if r := rs.Results[n]; r.Status >= lint.Warn {
			fail(n, fmt.Sprintf("%s: %s", r.Status, r.Details))
		}
	}
	c, err := x509.ParseCertificate(der)
	if err != nil {
		fail("thiqa_parse_go", err.Error())
		return nil, le
	}
	if !c.BasicConstraintsValid || !c.IsCA {
		fail("thiqa_ca_basic_constraints", "a CA certificate must carry basicConstraints cA=true")
	}
	if c.KeyUsage != x509.KeyUsageCertSign|x509.KeyUsageCRLSign {
		fail("thiqa_ca_key_usage", fmt.Sprintf("keyUsage %b, want keyCertSign and cRLSign only", c.KeyUsage))
	}
	if got := pathLenOf(c); got != want.pathLen {
		fail("thiqa_ca_path_len", fmt.Sprintf("pathLenConstraint %d, want %d (-1: none)", got, want.pathLen))
	}
	if len(c.SubjectKeyId) == 0 {
		fail("thiqa_ca_subject_key_id", "a CA certificate must carry a subjectKeyIdentifier")
	}
	if c.SerialNumber.Sign() <= 0 || c.SerialNumber.BitLen() < 64 || len(c.SerialNumber.Bytes()) > 20 {
		fail("thiqa_serial", "serial must be positive, at least 64 bits and at most 20 octets")
	}
	if !c.NotAfter.After(c.NotBefore) {
		fail("thiqa_validity", "notAfter is not after notBefore")
	}
	if is := want.issuer; is != nil {
		if c.NotAfter.After(is.NotAfter) || c.NotBefore.Before(is.NotBefore) {
			fail("thiqa_validity", "validity not nested in the issuer's")
		}
		if !bytes.Equal(c.AuthorityKeyId, is.SubjectKeyId) {
			fail("thiqa_ca_authority_key_id", "authorityKeyIdentifier differs from the issuer's subjectKeyIdentifier")
		}
	}
	if len(le.Lints) > 0 {
		return nil, le
	}
	return c, nil
}

// pathLenOf returns the certificate's pathLenConstraint, -1 when absent.
func pathLenOf(c *x509.Certificate) int {
	if c.MaxPathLen == 0 && !c.MaxPathLenZero {
		return -1
	}
	return c.MaxPathLen
}

// signCA builds tmpl under a look-alike of parent (parent's subject and
// key identifier, a throwaway key of parentKey's type), lints it, has
// parentKey sign exactly that TBSCertificate and checks the signature with
// parent's public key. parent is tmpl itself for a self-signed root.
func signCA(tmpl, parent *x509.Certificate, parentKey crypto.Signer, pub crypto.PublicKey, want caExpectation) (*x509.Certificate, error) {
	linter, err := caLinter()
	if err != nil {
		return nil, err
	}
	lintKey, err := throwawayKey(parentKey.Public())
	if err != nil {
		return nil, err
	}
	lookalike := *parent
	lookalike.PublicKey = lintKey.Public()
	lintDER, err := x509.CreateCertificate(rand.Reader, tmpl, &lookalike, pub, lintKey)
	if err != nil {
		return nil, fmt.Errorf("building the certificate to lint: %w", err)
	}
	linted, err := linter.lintCA(lintDER, want)
	if err != nil {
		return nil, err
	}
	sch, err := schemeOf(linted.SignatureAlgorithm)
	if err != nil {
		return nil, err
	}
	algID := tbsSignatureAlgorithm(linted.RawTBSCertificate)
	if algID == nil {
		return nil, errors.New("the linted TBSCertificate has no signature algorithm")
	}
	h := sch.hash.New()
	h.Write(linted.RawTBSCertificate)
	sig, err := parentKey.Sign(rand.Reader, h.Sum(nil), sch.opts)
	if err != nil {
		return nil, fmt.Errorf("signing: %w", err)
	}
	c, err := x509.ParseCertificate(assembleCertificate(linted.RawTBSCertificate, algID, sig))
	if err != nil {
		return nil, fmt.Errorf("parsing the signed certificate: %w", err)
	}
	if !bytes.Equal(c.RawTBSCertificate, linted.RawTBSCertificate) {
		return nil, ErrTBSMismatch
	}
	signerCert := parent
	if parent == tmpl {
		signerCert = c
	}
	if err := signerCert.CheckSignature(c.SignatureAlgorithm, c.RawTBSCertificate, c.Signature); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrBadSignature, err)
	}
	return c, nil
}

// KeyInUseError refuses to certify a key as an issuing CA: it is the
// root's key, or already an issuing CA's.
type KeyInUseError struct {
	// Holder names who holds the key ("the root", "issuing CA citizen, serial …").
	Holder string
}

// Error implements the error interface.
func (e *KeyInUseError) Error() string {
	return "the request's key is already in use as a CA key (" + e.Holder + "): an issuing CA needs a key of its own"
}

// IssuingCARequest is what the root certifies in the key ceremony: an
// issuing CA's certificate signing request and the profile of its
// certificate.
type IssuingCARequest struct {
	// CSR is the issuing CA's PKCS#10 request (PEM or DER) made on the
	// online token. Its subject becomes the certificate's (a commonName and
	// an ISO 3166 country are required); nothing else of it is copied.
	CSR []byte
	// BaseURL is the deployment's public base URL: the certificate names
	// the root's certificate (BASE/certs/root.crt, AIA caIssuers) and CRL
	// (BASE/crl/root.crl, CRL distribution point) under it.
	BaseURL string
	// Policies are the certificate policy OIDs the CA issues under.
	Policies []string
	// PathLen is the pathLenConstraint (0: the CA issues end-entity
	// certificates only).
	PathLen int
	// NotBefore defaults to now; NotAfter, when set, wins over Validity.
	// Either is cut to the root's notAfter.
	NotBefore, NotAfter time.Time
	// Validity is the lifetime when NotAfter is not set.
	Validity time.Duration
	// InUse maps the SHA-256 of the SubjectPublicKeyInfo of every key that
	// is already an issuing CA's to who holds it; such a CSR is refused
	// (*KeyInUseError), as is one for the root's own key.
	InUse map[[32]byte]string
}

// CertifyIssuingCA has the root certify an issuing CA from its CSR (EN
// 319 412-1, RFC 5280 §4.2.1.9): basicConstraints cA=true with the
// requested pathLenConstraint, keyCertSign and cRLSign, the certificate
// policies, authority and subject key identifiers, and the root's
// caIssuers and CRL URLs. The CSR must prove possession of an acceptable
// key that is not already a CA's. The certificate is linted (zlint) before
// the root key signs it. Refusals wrap ErrBadCSR or are *WeakKeyError,
// *KeyInUseError, *RequestError or *LintError.
func CertifyIssuingCA(root *x509.Certificate, rootSigner crypto.Signer, req IssuingCARequest) (*x509.Certificate, error) {
	if root == nil || !root.IsCA || !publicKeysEqual(root.PublicKey, rootSigner.Public()) {
		return nil, errors.New("the root signer does not match the root certificate")
	}
	csr, err := parseCSR(req.CSR)
	if err != nil {
		return nil, err
	}
	if err := checkKey(csr.PublicKey, nil); err != nil {
		return nil, err
	}
	spki, err := x509.MarshalPKIXPublicKey(csr.PublicKey)
	if err != nil {
		return nil, &WeakKeyError{Reason: err.Error()}
	}
	if publicKeysEqual(root.PublicKey, csr.PublicKey) {
		return nil, &KeyInUseError{Holder: "the root"}
	}
	if who, ok := req.InUse[sha256.Sum256(spki)]; ok {
		return nil, &KeyInUseError{Holder: who}
	}
	if len(csr.Subject.CommonName) == 0 || len(csr.Subject.Country) != 1 || !policies.IsCountryCode(csr.Subject.Country[0]) {
		return nil, &RequestError{Reason: "the CSR's subject needs a commonName and one ISO 3166 country"}
	}
	if req.PathLen < 0 || req.PathLen > 4 {
		return nil, &RequestError{Reason: fmt.Sprintf("pathLen %d outside [0, 4]", req.PathLen)}
	}
	tmpl, err := issuingCATemplate(root, csr.PublicKey, caTemplateOptions{
		base: req.BaseURL, policies: req.Policies, pathLen: req.PathLen,
		notBefore: req.NotBefore, notAfter: req.NotAfter, validity: req.Validity,
	})
	if err != nil {
		return nil, &RequestError{Reason: err.Error()}
	}
	tmpl.RawSubject = csr.RawSubject
	return signCA(tmpl, root, rootSigner, csr.PublicKey, caExpectation{pathLen: req.PathLen, issuer: root})
}

// caTemplateOptions are the variable parts of an issuing CA's certificate.
type caTemplateOptions struct {
	base                string
	policies            []string
	pathLen             int
	notBefore, notAfter time.Time
	validity            time.Duration
}

// issuingCATemplate builds an issuing CA's certificate (subject left to
// the caller) for pub under root.
func issuingCATemplate(root *x509.Certificate, pub crypto.PublicKey, o caTemplateOptions) (*x509.Certificate, error) {
	base, err := cleanBaseURL(o.base)
	if err != nil {
		return nil, err
	}
	var pols []x509.OID
	for _, s := range o.policies {
		p, err := x509.ParseOID(s)
		if err != nil {
			return nil, fmt.Errorf("policy %q: %w", s, err)
		}
		pols = append(pols, p)
	}
	if len(pols) == 0 {
		return nil, errors.New("an issuing CA certificate needs at least one certificate policy")
	}
	serial, err := newSerial(rand.Reader)
	if err != nil {
		return nil, err
	}
	ski, err := subjectKeyID(pub)
	if err != nil {
		return nil, err
	}
	nb, na, err := validityWindow(o.notBefore, o.notAfter, o.validity)
	if err != nil {
		return nil, err
	}
	if na.After(root.NotAfter) {
		na = root.NotAfter
	}
	if !na.After(nb) {
		return nil, errors.New("the root expires before the issuing CA would begin")
	}
	return &x509.Certificate{
		SerialNumber:          serial,
		NotBefore:             nb,
		NotAfter:              na,
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign,
		BasicConstraintsValid: true,
		IsCA:                  true,
		MaxPathLen:            o.pathLen,
		MaxPathLenZero:        o.pathLen == 0,
		SubjectKeyId:          ski,
		Policies:              pols,
		IssuingCertificateURL: []string{base + "/certs/root.crt"},
		CRLDistributionPoints: []string{base + "/crl/root.crl"},
	}, nil
}

// validityWindow returns notBefore (now when zero, whole seconds) and the
// inclusive notAfter: notAfter when set, else notBefore + validity - 1 s.
func validityWindow(notBefore, notAfter time.Time, validity time.Duration) (time.Time, time.Time, error) {
	if notBefore.IsZero() {
		notBefore = time.Now()
	}
	notBefore = notBefore.UTC().Truncate(time.Second)
	if !notAfter.IsZero() {
		notAfter = notAfter.UTC().Truncate(time.Second)
		if !notAfter.After(notBefore) {
			return time.Time{}, time.Time{}, errors.New("notAfter must be after notBefore")
		}
		return notBefore, notAfter, nil
	}
	if validity <= 0 {
		return time.Time{}, time.Time{}, errors.New("validity must be positive")
	}
	return notBefore, notBefore.Add(validity - time.Second), nil
}

// CreateIssuingCARequest returns the PKCS#10 request (DER) of an issuing CA
// whose key is signer (on the online token): the subject of cfg (C, O,
// organizationIdentifier, CN), nothing else. The root certifies it in the
// key ceremony (CertifyIssuingCA).
func CreateIssuingCARequest(signer crypto.Signer, cfg IssuingCAConfig) ([]byte, error) {
	name, err := caName(cfg.CommonName, cfg.Organization, cfg.OrganizationIdentifier, cfg.Country)
	if err != nil {
		return nil, fmt.Errorf("issuing CA %s: %w", cfg.Name, err)
	}
	if err := checkKey(signer.Public(), nil); err != nil {
		return nil, fmt.Errorf("issuing CA %s key: %w", cfg.Name, err)
	}
	der, err := x509.CreateCertificateRequest(rand.Reader, &x509.CertificateRequest{Subject: name}, signer)
	if err != nil {
		return nil, fmt.Errorf("issuing CA %s: signing the request: %w", cfg.Name, err)
	}
	return der, nil
}

// SPKIHash returns the SHA-256 of pub's DER SubjectPublicKeyInfo: how a
// key is named in records and refused when already in use.
func SPKIHash(pub crypto.PublicKey) ([32]byte, error) {
	der, err := x509.MarshalPKIXPublicKey(pub)
	if err != nil {
		return [32]byte{}, fmt.Errorf("encoding public key: %w", err)
	}
	return sha256.Sum256(der), nil
}
