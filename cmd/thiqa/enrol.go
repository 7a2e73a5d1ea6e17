package main

import (
	"context"
	"crypto"
	"crypto/rand"
	"crypto/sha1"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"math/big"
	"os"
	"path/filepath"
	"time"

	"github.com/thiqa/thiqa/ca"
	"github.com/thiqa/thiqa/ca/hierarchy"
	"github.com/thiqa/thiqa/enrol"
	"github.com/thiqa/thiqa/enrol/cmp"
	"github.com/thiqa/thiqa/enrol/est"
	"github.com/thiqa/thiqa/hsm"
	"github.com/thiqa/thiqa/policies"
)

// The enrolment protocols' keys on the token: the CMP server's signing key
// and the key whose (deterministic RSA) signature derives the enrolment
// secrets.
const (
	cmpServerKeyLabel     = "cmp-server"
	enrolSecretsKeyLabel  = "enrolment-secrets"
	cmpServerCertValidity = 3 * 365 * 24 * time.Hour
)

// oidCMCRA is id-kp-cmcRA (RFC 6402): the CMP server's certificate says it
// protects CMP messages as a registration authority.
var oidCMCRA = asn1.ObjectIdentifier{1, 3, 6, 1, 5, 5, 7, 3, 28}

// cmpServerCertPath is the CMP server's certificate: clients pin it
// (openssl cmp -srvcert).
func cmpServerCertPath(p *platform) string {
	return filepath.Join(p.cfg.Resolve(p.cfg.CA.CertDir), "cmp-server.pem")
}

// initEnrol makes sure the keys of the enrolment protocols exist on the
// token and the CMP server has its certificate.
func initEnrol(ctx context.Context, p *platform, out io.Writer) error {
	if !p.cfg.CA.Enabled() {
		return nil
	}
	key, cert, err := ensureCMPServer(ctx, p)
	if err != nil {
		return err
	}
	if _, err := ensureEnrolKey(ctx, p, enrolSecretsKeyLabel, hsm.RSA3072); err != nil {
		return err
	}
	fmt.Fprintf(out, "  CMP server           %s  %s (%s)\n", key.URI(), cmpServerCertPath(p), cert.Subject)
	return nil
}

func ensureEnrolKey(ctx context.Context, p *platform, label string, kt hsm.KeyType) (*hsm.Signer, error) {
	key, generated, err := ensureKey(ctx, p.cfg, p.token, "pkcs11:object="+label, kt)
	if err != nil {
		return nil, err
	}
	if generated {
		if err := auditKeyGenerated(ctx, p.audit, key); err != nil {
			return nil, err
		}
	}
	return key, nil
}

// ensureCMPServer returns the CMP server's key and its self-signed
// certificate (digitalSignature, id-kp-cmcRA), creating what is missing.
func ensureCMPServer(ctx context.Context, p *platform) (*hsm.Signer, *x509.Certificate, error) {
	key, err := ensureEnrolKey(ctx, p, cmpServerKeyLabel, hsm.ECP256)
	if err != nil {
		return nil, nil, err
	}
	path := cmpServerCertPath(p)
	if raw, err := os.ReadFile(path); err == nil {
		cert, err := parseCertPEM(raw)
		if err != nil {
			return nil, nil, fmt.Errorf("%s: %w", path, err)
		}
		if pub, ok := key.Public().(interface{ Equal(crypto.PublicKey) bool }); !ok || !pub.Equal(cert.PublicKey) {
			return nil, nil, fmt.Errorf("%s holds another key than the CMP server's %s on the token (nothing was replaced)", path, key.URI())
		}
		return key, cert, nil
	} else if !errors.Is(err, os.ErrNotExist) {
		return nil, nil, err
	}
	org, country := "Thiqa", ""
	if root, err := readAnchors(caCertPath(p.cfg, p.cfg.CA.Root.Name)); err == nil {
		if o := root[0].Subject.Organization; len(o) > 0 {
			org = o[0]
		}
		if c := root[0].Subject.Country; len(c) > 0 {
			country = c[0]
		}
	}
	serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 127))
	if err != nil {
		return nil, nil, err
	}
	spki, err := x509.MarshalPKIXPublicKey(key.Public())
	if err != nil {
		return nil, nil, err
	}
	ski := sha1.Sum(spki)
	now := time.Now().UTC()
	tmpl := &x509.Certificate{
		SerialNumber: serial.Add(serial, big.NewInt(1)),
		Subject:      pkix.Name{CommonName: org + " CMP server", Organization: []string{org}},
		NotBefore:    now.Add(-time.Minute), NotAfter: now.Add(cmpServerCertValidity),
		KeyUsage:              x509.KeyUsageDigitalSignature,
		UnknownExtKeyUsage:    []asn1.ObjectIdentifier{oidCMCRA},
		BasicConstraintsValid: true,
		SubjectKeyId:          ski[:],
	}
	if country != "" {
		tmpl.Subject.Country = []string{country}
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
	if err != nil {
		return nil, nil, fmt.Errorf("self-signing the CMP server certificate: %w", err)
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return nil, nil, err
	}
	if err := writeFileExclusive(path, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o644); err != nil {
		return nil, nil, fmt.Errorf("writing %s: %w", path, err)
	}
	cert, err := x509.ParseCertificate(der)
	return key, cert, err
}

// wireEnrol serves the enrolment records (POST /api/v1/enrolments for
// registration officers), the CMP server and the EST server, over the CA,
// the revocation service and the CA's renewal, which the earlier wirings
// left in s: a CMP kur or an EST simplereenroll is a renewal.
func wireEnrol(ctx context.Context, p *platform, s *serving) error {
	if s.ca == nil || s.revocations == nil || s.renewer == nil {
		return nil
	}
	a := s.ca.authority
	cmpKey, cmpCert, err := ensureCMPServer(ctx, p)
	if err != nil {
		return err
	}
	secretKey, err := ensureEnrolKey(ctx, p, enrolSecretsKeyLabel, hsm.RSA3072)
	if err != nil {
		return err
	}
	svc, err := enrol.New(enrol.Config{
		Store: p.db.Enrolments(), Issuer: a, Certificates: p.db.Certificates(nil), Status: p.certStatus, Audit: p.audit,
		Renewer: enrol.CARenewer{Renewals: s.renewer}, SecretKey: secretKey, Logger: p.logger.With("service", "enrol"),
		Profiles: enrolProfiles,
	})
	if err != nil {
		return err
	}
	svc.Register(s.mux, p.authn.Require)
	root, _ := a.CACertificate("root")
	var issuing []*x509.Certificate
	for _, c := range p.cfg.CA.Issuers {
		if cert, ok := currentIssuerCert(a, c.Name); ok {
			issuing = append(issuing, cert)
		}
	}
	srv, err := cmp.New(cmp.Config{
		Enrol: svc, Transactions: p.db.Enrolments(), Revoker: s.revocations, Issuer: a,
		Key: cmpKey, Certificate: cmpCert, CACertificates: issuing, Root: root,
		RA: func(ctx context.Context, cert *x509.Certificate, chain []*x509.Certificate) (string, error) {
			pr, err := p.authn.PrincipalOfCertificate(ctx, cert, chain)
			if err != nil {
				return "", err
			}
			if !pr.Has(policies.RoleRegistrationOfficer) {
				return "", errors.New("not a registration officer")
			}
			return pr.Subject, nil
		},
		Logger: p.logger.With("service", "cmp"), Metrics: p.reg,
	})
	if err != nil {
		return err
	}
	srv.Register(s.mux)
	estSrv, err := est.New(est.Config{Enrol: svc, Issuer: a, CACertificates: issuing, Root: root,
		Authenticate: p.authn.Authenticate, Logger: p.logger.With("service", "est"), Metrics: p.reg})
	if err != nil {
		return err
	}
	estSrv.Register(s.mux)
	return nil
}

// currentIssuerCert is the certificate of a CA's newest generation.
func currentIssuerCert(a *ca.Authority, name string) (*x509.Certificate, bool) {
	cert, ok := a.CACertificate(name)
	for n := 2; ok; n++ {
		next, found := a.CACertificate(hierarchy.GenerationName(name, n))
		if !found {
			break
		}
		cert = next
	}
	return cert, ok
}
