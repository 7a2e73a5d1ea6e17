package ca

import (
	"bytes"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/asn1"
	"errors"
	"fmt"
	"io"
	"math/big"
	"sync"
	"time"

	"github.com/thiqa/thiqa/ca/crl"
	"github.com/thiqa/thiqa/policies"
)

// IssuerOptions configures an issuing CA's signing identity.
type IssuerOptions struct {
	// Name is the issuer's name; it names its URLs (below) and its records
	// in the store. The first generation of a CA goes by the CA's short
	// name (citizen, organisation, tsa); later ones by CA_n (citizen_2),
	// since "-" would read as a CRL partition (citizen-2.crl).
	Name string
	// CA is the CA this issuer is a generation of (citizen); Name when
	// empty. The Authority issues new certificates from the highest
	// generation of each CA; the others keep their CRLs and OCSP answers.
	CA string
	// Generation numbers the CA's keys from 1 (the default).
	Generation int
	// BaseURL is the public base URL of caIssuers (BASE/certs/{name}.crt),
	// OCSP (BASE/ocsp) and CRLs (BASE/crl/{name}.crl, BASE/crl/{name}-{n}.crl).
	BaseURL string
	// SignerVerifiesECDSA says the signer checks each of its ECDSA
	// signatures with the public key itself before returning it (the HSM
	// layer's verifyAfterSign), so the issuer need not check it a second
	// time (a P-384 verification costs about 0.7 ms of CPU, as much as the
	// signature). The default, false, has the issuer verify every ECDSA
	// signature. RSA signatures are verified whatever this says.
	SignerVerifiesECDSA bool
	// CRLPartitions is the CA's number of CRL partitions
	// (revocation.crl.partitions, at most crl.MaxPartitions). With more
	// than one, each certificate's CRL distribution point names its
	// partition, BASE/crl/{name}-{n}.crl (n from the serial,
	// crl.Partition); with 0 or 1, BASE/crl/{name}.crl.
	CRLPartitions int
}

// Issuer is the signing identity of one issuing CA: its certificate, its
// crypto.Signer (an HSM key in production), and a look-alike issuer
// certificate (same subject and key identifier, throwaway key of the same
// type) under which the copies that are linted are built.
type Issuer struct {
	name      string
	cert      *x509.Certificate
	signer    crypto.Signer
	lintCert  *x509.Certificate
	lintKey   crypto.Signer
	caIssuers string
	ocspURL   string
	crlBase   string // the public base URL the CRL distribution points hang below
	// crlPartitions: see IssuerOptions.CRLPartitions.
	crlPartitions int
	// signerVerifiesECDSA: see IssuerOptions.SignerVerifiesECDSA.
	signerVerifiesECDSA bool
	// p384 verifies a P-384 CA key's signatures with tables built on
	// first use (p384Once); p384Err is why they could not be built.
	p384Once sync.Once
	p384     *p384Verifier
	p384Err  error

	// ca and generation: see IssuerOptions.CA and Generation.
	ca         string
	generation int
}

// NewIssuer checks that signer holds the key of cert (ca/hierarchy calls it
// with the CA's key on the token when it opens the authority) and prepares
// the throwaway lint key.
func NewIssuer(cert *x509.Certificate, signer crypto.Signer, opts IssuerOptions) (*Issuer, error) {
	if cert == nil || signer == nil {
		return nil, errors.New("issuer: certificate and signer are required")
	}
	if opts.Name == "" {
		return nil, errors.New("issuer: name is required")
	}
	if !publicKeysEqual(cert.PublicKey, signer.Public()) {
		return nil, fmt.Errorf("issuer %s: the signer's public key does not match the CA certificate", opts.Name)
	}
	if !cert.IsCA || cert.KeyUsage&x509.KeyUsageCertSign == 0 {
		return nil, fmt.Errorf("issuer %s: certificate is not a CA certificate with keyCertSign", opts.Name)
	}
	if len(cert.SubjectKeyId) == 0 {
		return nil, fmt.Errorf("issuer %s: CA certificate has no subjectKeyIdentifier", opts.Name)
	}
	base, err := cleanBaseURL(opts.BaseURL)
	if err != nil {
		return nil, fmt.Errorf("issuer %s: %w", opts.Name, err)
	}
	if opts.CRLPartitions < 0 || opts.CRLPartitions > crl.MaxPartitions {
		return nil, fmt.Errorf("issuer %s: %d CRL partitions outside [1, %d]", opts.Name, opts.CRLPartitions, crl.MaxPartitions)
	}
	lintKey, err := throwawayKey(signer.Public())
	if err != nil {
		return nil, fmt.Errorf("issuer %s: %w", opts.Name, err)
	}
	// The lint issuer has the real subject and key identifier but the
	// throwaway key, so the TBS signed with it equals the one the real key signs.
	lintCert := *cert
	lintCert.PublicKey = lintKey.Public()
	if opts.CA == "" {
		opts.CA = opts.Name
	}
	if opts.Generation == 0 {
		opts.Generation = 1
	}
	return &Issuer{
		name: opts.Name, ca: opts.CA, generation: opts.Generation, cert: cert, signer: signer, lintCert: &lintCert, lintKey: lintKey,
		caIssuers:           base + "/certs/" + opts.Name + ".crt",
		ocspURL:             base + "/ocsp",
		crlBase:             base,
		crlPartitions:       opts.CRLPartitions,
		signerVerifiesECDSA: opts.SignerVerifiesECDSA,
	}, nil
}

// throwawayKey generates an in-memory key of the same algorithm and size as pub.
func throwawayKey(pub crypto.PublicKey) (crypto.Signer, error) {
	switch k := pub.(type) {
	case *ecdsa.PublicKey:
		return ecdsa.GenerateKey(k.Curve, rand.Reader)
	case *rsa.PublicKey:
		return rsa.GenerateKey(rand.Reader, k.N.BitLen())
	}
	return nil, fmt.Errorf("unsupported CA key type %T", pub)
}

// Name returns the issuer's name (the CA's short name for its first generation).
func (i *Issuer) Name() string { return i.name }

// CA returns the name of the CA this issuer is a generation of.
func (i *Issuer) CA() string { return i.ca }

// Generation returns the issuer's generation (1 for the CA's first key).
func (i *Issuer) Generation() int { return i.generation }

// Certificate returns the CA certificate.
func (i *Issuer) Certificate() *x509.Certificate { return i.cert }

// CRLPartition returns the CRL partition of a certificate this CA issues
// with that serial: the one its CRL distribution point names.
func (i *Issuer) CRLPartition(serial *big.Int) int { return crl.Partition(serial, i.crlPartitions) }

// leafTemplate builds the end-entity certificate from the profile and the
// validated subject only (never from a CSR's subject or extensions).
func (i *Issuer) leafTemplate(p *policies.Profile, sub policies.Subject, pub crypto.PublicKey, serial *big.Int, notBefore time.Time) (*x509.Certificate, error) {
	ski, err := subjectKeyID(pub)
	if err != nil {
		return nil, err
	}
	pols, err := policyOIDs(p)
	if err != nil {
		return nil, err
	}
	if err := i.expiring(p, notBefore, 0); err != nil {
		return nil, err // the authority refuses it earlier (Authority.issue)
	}
	notBefore, notAfter := i.window(p, notBefore)
	t := &x509.Certificate{
		SerialNumber:          serial,
		Subject:               sub.Name(),
		NotBefore:             notBefore,
		NotAfter:              notAfter,
		KeyUsage:              p.KeyUsage,
		BasicConstraintsValid: true,
		IsCA:                  false,
		SubjectKeyId:          ski,
		Policies:              pols,
		IssuingCertificateURL: []string{i.caIssuers},
	}
	if !p.OCSPNoCheck {
		// A delegated responder is not checked for revocation: no OCSP URL for it.
		t.OCSPServer = []string{i.ocspURL}
	}
	t.CRLDistributionPoints = []string{crl.PartitionURL(i.crlBase, i.name, serial, i.crlPartitions)}
	if sub.Email != "" {
		t.EmailAddresses = []string{sub.Email}
	}
	if ext, ok, err := extKeyUsageExtension(p); err != nil {
		return nil, err
	} else if ok {
		t.ExtraExtensions = append(t.ExtraExtensions, ext)
	}
	if ext, ok, err := qcStatementsExtension(p.QC); err != nil {
		return nil, err
	} else if ok {
		t.ExtraExtensions = append(t.ExtraExtensions, ext)
	}
	if p.OCSPNoCheck {
		t.ExtraExtensions = append(t.ExtraExtensions, ocspNoCheckExtension())
	}
	return t, nil
}

// signLintCopy builds the certificate to lint under the look-alike issuer
// (real subject and key identifier, throwaway key). Go's CreateCertificate
// hands the complete TBSCertificate to a crypto.MessageSigner; tbsCapture
// records it and returns an empty signature, which CreateCertificate's own
// signature check rejects at once; the copy is then assembled from the
// captured TBS and a well-formed placeholder signature. Every template check has passed by the
// time the TBS is handed over, so the captured TBS is exactly what the CA key
// will sign, and the CA key signs nothing before the lints pass. This saves
// the throwaway key's sign-and-verify, about half the crypto of an issuance.
func (i *Issuer) signLintCopy(t *x509.Certificate, pub crypto.PublicKey) ([]byte, error) {
	capture := &tbsCapture{pub: i.lintKey.Public()}
	der, err := x509.CreateCertificate(rand.Reader, t, i.lintCert, pub, capture)
	if capture.tbs == nil {
		if err == nil {
			err = errors.New("no TBSCertificate was produced")
		}
		return nil, fmt.Errorf("building the certificate to lint: %w", err)
	}
	if err == nil {
		return der, nil
	}
	lintDER, err := asn1.Marshal(struct {
		TBS       asn1.RawValue
		Algorithm asn1.RawValue
		Signature asn1.BitString
	}{asn1.RawValue{FullBytes: capture.tbs}, asn1.RawValue{FullBytes: tbsSignatureAlgorithm(capture.tbs)}, asn1.BitString{Bytes: capture.sig, BitLength: 8 * len(capture.sig)}})
	if err != nil {
		return nil, fmt.Errorf("assembling the certificate to lint: %w", err)
	}
	return lintDER, nil
}

// tbsCapture is a crypto.MessageSigner that records the message it is asked
// to sign and prepares a well-formed placeholder signature for the lint copy.
type tbsCapture struct {
	pub crypto.PublicKey
	tbs []byte
	sig []byte
}

func (c *tbsCapture) Public() crypto.PublicKey { return c.pub }

func (c *tbsCapture) Sign(io.Reader, []byte, crypto.SignerOpts) ([]byte, error) {
	return nil, errors.New("tbs capture: only SignMessage is supported")
}

func (c *tbsCapture) SignMessage(_ io.Reader, msg []byte, _ crypto.SignerOpts) ([]byte, error) {
	c.tbs = bytes.Clone(msg)
	switch k := c.pub.(type) {
	case *ecdsa.PublicKey:
		// ECDSA-Sig-Value ::= SEQUENCE { r INTEGER, s INTEGER }, full-size values.
		n := k.Curve.Params().N
		r := new(big.Int).Sub(n, big.NewInt(1))
		c.sig, _ = asn1.Marshal(struct{ R, S *big.Int }{r, r})
	case *rsa.PublicKey:
		c.sig = make([]byte, k.Size())
		c.sig[1] = 1
	}
	// CreateCertificate gets an empty signature, which its check rejects
	// before any curve arithmetic; the lint copy carries the placeholder.
	return []byte{}, nil
}

// tbsSignatureAlgorithm returns the signature AlgorithmIdentifier inside a
// TBSCertificate (the outer one must be the same, RFC 5280 §4.1.1.2).
func tbsSignatureAlgorithm(tbs []byte) []byte {
	var seq, field asn1.RawValue
	if _, err := asn1.Unmarshal(tbs, &seq); err != nil {
		return nil
	}
	rest := seq.Bytes
	// version [0] EXPLICIT (optional), serialNumber, then signature.
	for n := 0; ; n++ {
		var err error
		if rest, err = asn1.Unmarshal(rest, &field); err != nil {
			return nil
		}
		if field.Class == asn1.ClassUniversal && field.Tag == asn1.TagSequence {
			return field.FullBytes
		}
		if n > 1 {
			return nil
		}
	}
}

// ErrTBSMismatch means the certificate signed by the CA key is not the one
// that was linted; it is never returned to a client.
var ErrTBSMismatch = errors.New("signed certificate differs from the linted one")

// ErrBadSignature means the CA key's signature over the TBSCertificate does
// not verify with the CA certificate's public key (a faulty HSM); the
// certificate is never published.
var ErrBadSignature = errors.New("the CA signature does not verify")

// signatureScheme is how the CA key signs a TBSCertificate: the digest and
// the signer options matching the TBS's signature AlgorithmIdentifier.
type signatureScheme struct {
	hash crypto.Hash
	opts crypto.SignerOpts
	rsa  bool
	pss  bool
}

// schemeOf maps the signature algorithm the lint copy was built with (the
// throwaway key has the CA key's type, so x509 picked what it picks for the
// CA key) to the digest and options the CA key signs with.
func schemeOf(alg x509.SignatureAlgorithm) (signatureScheme, error) {
	switch alg {
	case x509.ECDSAWithSHA256:
		return signatureScheme{hash: crypto.SHA256, opts: crypto.SHA256}, nil
	case x509.ECDSAWithSHA384:
		return signatureScheme{hash: crypto.SHA384, opts: crypto.SHA384}, nil
	case x509.ECDSAWithSHA512:
		return signatureScheme{hash: crypto.SHA512, opts: crypto.SHA512}, nil
	case x509.SHA256WithRSA:
		return signatureScheme{hash: crypto.SHA256, opts: crypto.SHA256, rsa: true}, nil
	case x509.SHA384WithRSA:
		return signatureScheme{hash: crypto.SHA384, opts: crypto.SHA384, rsa: true}, nil
	case x509.SHA512WithRSA:
		return signatureScheme{hash: crypto.SHA512, opts: crypto.SHA512, rsa: true}, nil
	case x509.SHA256WithRSAPSS, x509.SHA384WithRSAPSS, x509.SHA512WithRSAPSS:
		h := map[x509.SignatureAlgorithm]crypto.Hash{x509.SHA256WithRSAPSS: crypto.SHA256, x509.SHA384WithRSAPSS: crypto.SHA384, x509.SHA512WithRSAPSS: crypto.SHA512}[alg]
		return signatureScheme{hash: h, opts: &rsa.PSSOptions{SaltLength: rsa.PSSSaltLengthEqualsHash, Hash: h}, rsa: true, pss: true}, nil
	}
	return signatureScheme{}, fmt.Errorf("signature algorithm %s is not supported for certificates", alg)
}

// sign has the CA key sign exactly the linted TBSCertificate and assembles
// the certificate from it, so the signed certificate is the linted one by
// construction (checked again after parsing, which costs microseconds).
// It does not check the signature; verify does.
func (i *Issuer) sign(linted *x509.Certificate) (*x509.Certificate, []byte, signatureScheme, error) {
	tbs := linted.RawTBSCertificate
	sch, err := schemeOf(linted.SignatureAlgorithm)
	if err != nil {
		return nil, nil, sch, err
	}
	algID := tbsSignatureAlgorithm(tbs)
	if algID == nil {
		return nil, nil, sch, errors.New("the linted TBSCertificate has no signature algorithm")
	}
	h := sch.hash.New()
	h.Write(tbs)
	digest := h.Sum(nil)
	sig, err := i.signer.Sign(rand.Reader, digest, sch.opts)
	if err != nil {
		return nil, nil, sch, fmt.Errorf("signing with CA %s: %w", i.name, err)
	}
	if len(sig) == 0 {
		return nil, nil, sch, fmt.Errorf("signing with CA %s: empty signature", i.name)
	}
	c, err := x509.ParseCertificate(assembleCertificate(tbs, algID, sig))
	if err != nil {
		return nil, nil, sch, fmt.Errorf("parsing the signed certificate: %w", err)
	}
	if !bytes.Equal(c.RawTBSCertificate, tbs) || c.SignatureAlgorithm != linted.SignatureAlgorithm {
		return nil, nil, sch, ErrTBSMismatch
	}
	return c, digest, sch, nil
}

// verify checks the CA key's signature over digest with the CA
// certificate's public key, so that a faulty signature is never published.
// RSA signatures are always checked (a faulty RSA-CRT signature leaks the
// key, and the check is cheap); ECDSA ones unless the issuer was told its
// signer checks them itself (IssuerOptions.SignerVerifiesECDSA), in which
// case the signature's encoding and range are still checked.
func (i *Issuer) verify(sig, digest []byte, sch signatureScheme) error {
	switch pub := i.cert.PublicKey.(type) {
	case *ecdsa.PublicKey:
		if sch.rsa {
			break
		}
		if i.signerVerifiesECDSA {
			if !wellFormedECDSA(pub, sig) {
				return fmt.Errorf("CA %s: %w (malformed ECDSA signature)", i.name, ErrBadSignature)
			}
			return nil
		}
		if !i.verifyECDSA(pub, digest, sig) {
			return fmt.Errorf("CA %s: %w", i.name, ErrBadSignature)
		}
		return nil
	case *rsa.PublicKey:
		if !sch.rsa {
			break
		}
		var err error
		if sch.pss {
			err = rsa.VerifyPSS(pub, sch.hash, digest, sig, sch.opts.(*rsa.PSSOptions))
		} else {
			err = rsa.VerifyPKCS1v15(pub, sch.hash, digest, sig)
		}
		if err != nil {
			return fmt.Errorf("CA %s: %w: %v", i.name, ErrBadSignature, err)
		}
		return nil
	}
	return fmt.Errorf("CA %s: %w: key type %T does not match the signature algorithm", i.name, ErrBadSignature, i.cert.PublicKey)
}

// verifyECDSA verifies an ECDSA signature by the CA key: P-384 with the
// issuer's precomputed tables (about 0.15 ms instead of crypto/ecdsa's
// 0.7 ms), other curves with crypto/ecdsa.
func (i *Issuer) verifyECDSA(pub *ecdsa.PublicKey, digest, sig []byte) bool {
	if pub.Curve != elliptic.P384() {
		return ecdsa.VerifyASN1(pub, digest, sig)
	}
	i.p384Once.Do(func() { i.p384, i.p384Err = newP384Verifier(pub) })
	if i.p384Err != nil {
		return ecdsa.VerifyASN1(pub, digest, sig)
	}
	return i.p384.verifyASN1(digest, sig)
}

// wellFormedECDSA checks that sig is a DER ECDSA-Sig-Value with r and s in
// [1, n-1] for pub's curve, without the curve arithmetic of a verification.
func wellFormedECDSA(pub *ecdsa.PublicKey, sig []byte) bool {
	r, s, ok := parseECDSASignature(sig)
	if !ok {
		return false
	}
	n := pub.Curve.Params().N
	return r.Sign() > 0 && s.Sign() > 0 && r.Cmp(n) < 0 && s.Cmp(n) < 0
}

// assembleCertificate encodes Certificate ::= SEQUENCE { tbsCertificate,
// signatureAlgorithm, signatureValue BIT STRING } from its DER parts.
func assembleCertificate(tbs, algID, sig []byte) []byte {
	bitLen := len(sig) + 1 // leading octet: no unused bits
	inner := len(tbs) + len(algID) + 1 + derLengthSize(bitLen) + bitLen
	out := make([]byte, 0, 1+derLengthSize(inner)+inner)
	out = append(out, 0x30)
	out = appendDERLength(out, inner)
	out = append(out, tbs...)
	out = append(out, algID...)
	out = append(out, 0x03)
	out = appendDERLength(out, bitLen)
	out = append(out, 0)
	return append(out, sig...)
}

// derLengthSize is the size of a DER length field for n.
func derLengthSize(n int) int {
	if n < 0x80 {
		return 1
	}
	size := 1
	for ; n > 0; n >>= 8 {
		size++
	}
	return size
}

// appendDERLength appends the DER length field for n.
func appendDERLength(b []byte, n int) []byte {
	if n < 0x80 {
		return append(b, byte(n))
	}
	k := derLengthSize(n) - 1
	b = append(b, 0x80|byte(k))
	for s := (k - 1) * 8; s >= 0; s -= 8 {
		b = append(b, byte(n>>s))
	}
	return b
}
