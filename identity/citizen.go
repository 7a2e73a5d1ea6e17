package identity

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/hmac"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/asn1"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"net/http"
	"strings"

	"github.com/thiqa/thiqa/internal/auth"
	"github.com/thiqa/thiqa/policies"
)

var (
	oidGivenName = asn1.ObjectIdentifier{2, 5, 4, 42}
	oidSurname   = asn1.ObjectIdentifier{2, 5, 4, 4}
)

// refusal is a login refused for a reason the audit log records; the
// citizen's browser gets access_denied.
type refusal struct{ reason string }

func (r *refusal) Error() string { return "login refused: " + r.reason }

func refuse(format string, args ...any) error { return &refusal{reason: fmt.Sprintf(format, args...)} }

// citizenFromCert reads the citizen's identity from a natural-person
// certificate: serialNumber "IDC" + country + "-" + civil number (EN 319
// 412-1 §5.1.3), givenName, surname and commonName.
func citizenFromCert(cert *x509.Certificate) (Citizen, error) {
	sn := cert.Subject.SerialNumber
	if len(sn) < 7 || !strings.HasPrefix(sn, "IDC") || sn[5] != '-' {
		return Citizen{}, refuse("certificate subject has no civil number (serialNumber %q)", sn)
	}
	c := Citizen{Country: sn[3:5], CivilNumber: sn[6:], Name: cert.Subject.CommonName, CertSerial: hex.EncodeToString(cert.SerialNumber.Bytes())}
	for _, d := range c.CivilNumber {
		if d < '0' || d > '9' {
			return Citizen{}, refuse("certificate civil number %q is not all digits", c.CivilNumber)
		}
	}
	for _, n := range cert.Subject.Names {
		v, _ := n.Value.(string)
		switch {
		case n.Type.Equal(oidGivenName):
			c.GivenName = v
		case n.Type.Equal(oidSurname):
			c.FamilyName = v
		}
	}
	return c, nil
}

// checkCertificate asks the CA about cert now: it must be within its
// validity, issued by this CA under the citizen-auth profile and not
// revoked. A refusal is a *refusal; other errors are failures to ask.
func (p *Provider) checkCertificate(ctx context.Context, cert *x509.Certificate) (Citizen, error) {
	now := p.now()
	if now.Before(cert.NotBefore) || now.After(cert.NotAfter) {
		return Citizen{}, refuse("certificate %x expired or not yet valid (valid %s to %s)", cert.SerialNumber, cert.NotBefore.UTC().Format("2006-01-02T15:04:05Z"), cert.NotAfter.UTC().Format("2006-01-02T15:04:05Z"))
	}
	st, err := p.cfg.Status.Status(ctx, cert)
	if err != nil {
		return Citizen{}, fmt.Errorf("checking certificate status: %w", err)
	}
	switch {
	case !st.Known:
		return Citizen{}, refuse("certificate %x was not issued by this CA", cert.SerialNumber)
	case st.Profile != ProfileCitizenAuth:
		return Citizen{}, refuse("certificate %x has profile %q, not %s", cert.SerialNumber, st.Profile, ProfileCitizenAuth)
	case st.Revoked:
		return Citizen{}, refuse("certificate %x is revoked (since %s)", cert.SerialNumber, st.RevokedAt.UTC().Format("2006-01-02T15:04:05Z"))
	case st.KeyBlocked:
		return Citizen{}, refuse("the key of certificate %x was reported compromised", cert.SerialNumber)
	}
	c, err := citizenFromCert(cert)
	if err == nil && p.cfg.Country != "" && c.Country != p.cfg.Country {
		return Citizen{}, refuse("certificate %x names a citizen of %s, not of this deployment's country %s", cert.SerialNumber, c.Country, p.cfg.Country)
	}
	c.KeyOnToken = st.KeyOnToken
	return c, err
}

// verifyTLSCitizen checks a mutual-TLS client certificate chain against
// the citizen CA for client authentication.
func (p *Provider) verifyTLSCitizen(chain []*x509.Certificate) (*x509.Certificate, error) {
	if p.cfg.CitizenRoots == nil {
		return nil, refuse("mutual-TLS login is not configured")
	}
	if len(chain) == 0 {
		return nil, refuse("no client certificate")
	}
	inter := x509.NewCertPool()
	if p.cfg.CitizenIntermediates != nil {
		inter = p.cfg.CitizenIntermediates.Clone()
	}
	for _, c := range chain[1:] {
		inter.AddCert(c)
	}
	leaf := chain[0]
	if _, err := leaf.Verify(x509.VerifyOptions{
		Roots: p.cfg.CitizenRoots, Intermediates: inter, CurrentTime: p.now(),
		KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
	}); err != nil {
		var inv x509.CertificateInvalidError
		if errors.As(err, &inv) && inv.Reason == x509.Expired {
			return nil, refuse("certificate %x expired or not yet valid", leaf.SerialNumber)
		}
		return nil, refuse("client certificate does not chain to the citizen CA: %v", err)
	}
	return leaf, nil
}

// challengeDigest is what the citizen's key signs for a remote login: a
// domain-separated hash binding the login session and a fresh nonce.
func challengeDigest(h crypto.Hash, loginID string, nonce []byte) []byte {
	d := h.New()
	d.Write([]byte("thiqa-oidc-login-challenge\x00"))
	d.Write([]byte(loginID))
	d.Write([]byte{0})
	d.Write(nonce)
	return d.Sum(nil)
}

// proveKey has key sign a fresh challenge and checks the signature with the
// certificate's public key: proof that the token holds the key certified.
func proveKey(key crypto.Signer, cert *x509.Certificate, loginID string) error {
	nonce := []byte(randomToken(32))
	switch pub := cert.PublicKey.(type) {
	case *ecdsa.PublicKey:
		h := crypto.SHA256
		switch pub.Curve.Params().BitSize {
		case 384:
			h = crypto.SHA384
		case 521:
			h = crypto.SHA512
		}
		dg := challengeDigest(h, loginID, nonce)
		sig, err := key.Sign(nil, dg, h)
		if err != nil {
			return fmt.Errorf("signing the login challenge: %w", err)
		}
		if !ecdsa.VerifyASN1(pub, dg, sig) {
			return refuse("challenge signature does not verify with the certificate's key")
		}
	case *rsa.PublicKey:
		dg := challengeDigest(crypto.SHA256, loginID, nonce)
		opts := &rsa.PSSOptions{SaltLength: rsa.PSSSaltLengthEqualsHash, Hash: crypto.SHA256}
		sig, err := key.Sign(nil, dg, opts)
		if err != nil {
			return fmt.Errorf("signing the login challenge: %w", err)
		}
		if err := rsa.VerifyPSS(pub, crypto.SHA256, dg, sig, opts); err != nil {
			return refuse("challenge signature does not verify with the certificate's key")
		}
	case ed25519.PublicKey:
		msg := challengeDigest(crypto.SHA512, loginID, nonce)
		sig, err := key.Sign(nil, msg, crypto.Hash(0))
		if err != nil {
			return fmt.Errorf("signing the login challenge: %w", err)
		}
		if !ed25519.Verify(pub, msg, sig) {
			return refuse("challenge signature does not verify with the certificate's key")
		}
	default:
		return refuse("unsupported certificate key type %T", cert.PublicKey)
	}
	return nil
}

// subject returns the sub claim for a citizen at a client: the civil
// number when the client may see it, else a pairwise identifier (OpenID
// Connect Core §8.1): HMAC-SHA256 over the sector identifier and the civil
// number, keyed with the deployment's secret.
func (p *Provider) subject(c *Client, civil string) string {
	if c.AllowCivilNumber {
		return civil
	}
	mac := hmac.New(sha256.New, p.cfg.PairwiseSecret)
	mac.Write([]byte(sectorOf(c)))
	mac.Write([]byte{0})
	mac.Write([]byte(civil))
	return base64.RawURLEncoding.EncodeToString(mac.Sum(nil))
}

// sectorOf is the client's sector identifier: as registered, else the host
// of its first redirect URI.
func sectorOf(c *Client) string {
	if c.SectorIdentifier != "" {
		return c.SectorIdentifier
	}
	if len(c.RedirectURIs) > 0 {
		if h := hostOf(c.RedirectURIs[0]); h != "" {
			return h
		}
	}
	return c.ID
}

// CitizenCaller names the citizen internal/auth's middleware let through:
// the civil number of the request's principal (JWT subject or the
// certificate's serialNumber), never one the request names; false unless
// the principal is a citizen with a civil number.
func CitizenCaller(r *http.Request) (string, bool) {
	pr, ok := auth.FromContext(r.Context())
	if !ok || !pr.Has(policies.RoleCitizen) || pr.CivilNumber == "" {
		return "", false
	}
	return pr.CivilNumber, true
}
