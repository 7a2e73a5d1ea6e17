package auth

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/asn1"
	"encoding/pem"
	"errors"
	"fmt"
	"os"
	"strings"

	"github.com/thiqa/thiqa/policies"
)

// oidOrganizationIdentifier is the X.520 organizationIdentifier attribute (2.5.4.97).
var oidOrganizationIdentifier = asn1.ObjectIdentifier{2, 5, 4, 97}

// loadClientCAs reads the PEM CA certificates that client certificates must chain to.
func loadClientCAs(files []string) (*x509.CertPool, []*x509.Certificate, error) {
	pool := x509.NewCertPool()
	var certs []*x509.Certificate
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			return nil, nil, fmt.Errorf("auth: reading client CA file: %w", err)
		}
		n := 0
		for {
			var block *pem.Block
			block, data = pem.Decode(data)
			if block == nil {
				break
			}
			if block.Type != "CERTIFICATE" {
				continue
			}
			c, err := x509.ParseCertificate(block.Bytes)
			if err != nil {
				return nil, nil, fmt.Errorf("auth: client CA file %s: %w", f, err)
			}
			if !c.IsCA {
				return nil, nil, fmt.Errorf("auth: client CA file %s: %q is not a CA certificate", f, c.Subject)
			}
			pool.AddCert(c)
			certs = append(certs, c)
			n++
		}
		if n == 0 {
			return nil, nil, fmt.Errorf("auth: client CA file %s holds no PEM certificate", f)
		}
	}
	return pool, certs, nil
}

// ClientCAPool returns the CAs that client certificates must chain to, or
// nil when mutual TLS is not configured.
func (a *Authenticator) ClientCAPool() *x509.CertPool {
	if len(a.clientCAs) == 0 {
		return nil
	}
	return a.clientCAPool.Clone()
}

// ServerTLSConfig returns a copy of base (or a new configuration) that asks
// for a client certificate without requiring one, and verifies any certificate
// given against the client CAs (tls.VerifyClientCertIfGiven). Without client
// CAs the copy requests no client certificate.
func (a *Authenticator) ServerTLSConfig(base *tls.Config) *tls.Config {
	var cfg *tls.Config
	if base != nil {
		cfg = base.Clone()
	} else {
		cfg = &tls.Config{}
	}
	if cfg.MinVersion < tls.VersionTLS12 {
		cfg.MinVersion = tls.VersionTLS12
	}
	if len(a.clientCAs) == 0 {
		cfg.ClientAuth = tls.NoClientCert
		cfg.ClientCAs = nil
		return cfg
	}
	cfg.ClientAuth = tls.VerifyClientCertIfGiven
	cfg.ClientCAs = a.clientCAPool.Clone()
	return cfg
}

// authenticateCertificate maps a verified client certificate chain to a
// principal, and returns the chain that ends at a configured client CA.
func (a *Authenticator) authenticateCertificate(chains [][]*x509.Certificate) (*Principal, []*x509.Certificate, error) {
	if len(a.clientCAs) == 0 {
		return nil, nil, errors.New("mutual TLS is not configured")
	}
	// Insist that the chain ends at one of our client CAs, whatever the
	// TLS configuration of the server that verified it.
	var chain []*x509.Certificate
	for _, c := range chains {
		if len(c) > 0 && a.isClientCA(c[len(c)-1]) {
			chain = c
			break
		}
	}
	if chain == nil {
		return nil, nil, errors.New("client certificate does not chain to a configured client CA")
	}
	leaf := chain[0]
	id := certIdentity(leaf, a.country)
	for _, r := range a.rules {
		if !r.matches(leaf, id) {
			continue
		}
		p := &Principal{
			Subject:     leaf.Subject.String(),
			Roles:       []policies.Role{r.Role},
			Method:      MethodMTLS,
			Issuer:      leaf.Issuer.String(),
			Certificate: leaf,
			Expires:     leaf.NotAfter,
			chain:       chain,
		}
		switch r.Role {
		case policies.RoleAgency:
			p.Subject, p.OrganizationIdentifier = id.orgID, id.orgID
		case policies.RoleCitizen:
			p.Subject, p.CivilNumber, p.CivilCountry = id.civilNumber, id.civilNumber, a.country
			if id.civilNumber == "" {
				// A national identity number of another country than
				// the deployment's names none of its citizens: the holder
				// is authenticated (named by the serialNumber) but holds
				// no role here, so every action is refused with a 403.
				p.Subject, p.CivilCountry, p.Roles, p.otherCountry = id.serialNumber, "", []policies.Role{}, true
			}
		}
		return p, chain, nil
	}
	// The chain ends at a client CA (and the TLS layer verified it and the
	// caller's key): the certificate names its holder, who holds no role
	// here (identified).
	return nil, nil, identified(fmt.Errorf("client certificate %q matches no role rule", leaf.Subject.String()))
}

func (a *Authenticator) isClientCA(c *x509.Certificate) bool {
	for _, ca := range a.clientCAs {
		if bytes.Equal(ca.Raw, c.Raw) {
			return true
		}
	}
	return false
}

// identity holds the subject attributes that identify a certificate holder.
type identity struct {
	orgID        string // organizationIdentifier (2.5.4.97), e.g. NTROM-1234567
	serialNumber string // subject serialNumber (2.5.4.5), e.g. IDCOM-12345678
	naturalID    bool   // serialNumber is an IDCxx- national identity number of any country
	civilNumber  string // the number of an IDCxx- serialNumber of the deployment's country
}

// certIdentity reads c's identity attributes; country is the deployment's
// (CivilNumberIn), "" for any.
func certIdentity(c *x509.Certificate, country string) identity {
	var id identity
	for _, atv := range c.Subject.Names {
		if atv.Type.Equal(oidOrganizationIdentifier) {
			if s, ok := atv.Value.(string); ok {
				id.orgID = s
			}
		}
	}
	id.serialNumber = c.Subject.SerialNumber
	id.naturalID = CivilNumber(id.serialNumber) != ""
	id.civilNumber = CivilNumberIn(country, id.serialNumber)
	return id
}

// CivilNumber extracts the national identity number from a natural-person
// serialNumber with the EN 319 412-1 semantics identifier "IDC": "IDC", a
// two-letter country code, "-", the number (IDCOM-12345678 → 12345678).
// It returns "" for anything else.
//
// It ignores the country: IDCOM-123 and IDCAE-123 both give 123. Use it
// only on certificates this deployment issued (their country is its own);
// a certificate from elsewhere (a client certificate, a certificate a
// principal claims to own) needs CivilNumberIn with the deployment's country.
func CivilNumber(serialNumber string) string {
	if len(serialNumber) < 7 || serialNumber[:3] != "IDC" || serialNumber[5] != '-' {
		return ""
	}
	for _, ch := range serialNumber[3:5] {
		if ch < 'A' || ch > 'Z' {
			return ""
		}
	}
	num := serialNumber[6:]
	for _, ch := range num {
		if ch <= ' ' || ch == 0x7f {
			return ""
		}
	}
	return num
}

// CivilNumberIn is CivilNumber for a number of country only (an ISO 3166
// alpha-2 code, the deployment's): IDCAE-123 gives "" in OM. A civil number
// names a citizen of the country that assigned it, and this deployment's
// citizens are those of its own country. An empty country accepts every
// country, as CivilNumber does (a deployment whose country is not known).
func CivilNumberIn(country, serialNumber string) string {
	num := CivilNumber(serialNumber)
	if num == "" || country == "" || serialNumber[3:5] == country {
		return num
	}
	return ""
}

func (r MTLSRule) matches(leaf *x509.Certificate, id identity) bool {
	if r.Subject != "" && leaf.Subject.String() != r.Subject {
		return false
	}
	if r.Issuer != "" && leaf.Issuer.String() != r.Issuer {
		return false
	}
	if (r.RequireOrganizationIdentifier || r.OrganizationIdentifierPrefix != "") &&
		(id.orgID == "" || !strings.HasPrefix(id.orgID, r.OrganizationIdentifierPrefix)) {
		return false
	}
	if r.SerialNumberPrefix != "" && (id.serialNumber == "" || !strings.HasPrefix(id.serialNumber, r.SerialNumberPrefix)) {
		return false
	}
	// A role's identity attribute must be present.
	switch r.Role {
	case policies.RoleAgency:
		return id.orgID != ""
	case policies.RoleCitizen:
		// A national identity number of another country still makes a
		// citizen rule match, for a principal without the role (the
		// refusal is then the action's 403, not an unknown caller's 401).
		return id.naturalID
	}
	return true
}

// PrincipalOfCertificate authenticates a certificate presented outside a
// TLS handshake (the signer of a CMP request): it must chain to a
// configured client CA (through intermediates), be within its validity,
// match a role rule and pass the certificate status check, as a TLS client
// certificate must.
func (a *Authenticator) PrincipalOfCertificate(ctx context.Context, leaf *x509.Certificate, intermediates []*x509.Certificate) (*Principal, error) {
	if len(a.clientCAs) == 0 {
		return nil, errors.New("mutual TLS is not configured")
	}
	pool := x509.NewCertPool()
	for _, c := range intermediates {
		pool.AddCert(c)
	}
	chains, err := leaf.Verify(x509.VerifyOptions{Roots: a.clientCAPool, Intermediates: pool, CurrentTime: a.now(),
		KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageAny}})
	if err != nil {
		return nil, invalid(err)
	}
	p, chain, err := a.authenticateCertificate(chains)
	if err != nil {
		return nil, invalid(err)
	}
	if err := a.checkCert(ctx, chain); err != nil {
		return nil, invalid(err)
	}
	return p, nil
}
