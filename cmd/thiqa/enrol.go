package main

import (
	"context"
	"crypto/x509"
	"fmt"
	"io"
	"path/filepath"
	"time"

	"github.com/thiqa/thiqa/enrol"
	"github.com/thiqa/thiqa/enrol/cmp"
	"github.com/thiqa/thiqa/enrol/est"
	"github.com/thiqa/thiqa/hsm"
	"github.com/thiqa/thiqa/verify"
)

// The enrolment protocols' keys on the token: the CMP server's signing key
// and the key whose (deterministic RSA) signature derives the enrolment
// secrets.
const (
	cmpServerKeyLabel    = "cmp-server"
	enrolSecretsKeyLabel = "enrolment-secrets"
)

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

// ensureEnrolKey finds (or makes, recorded) the enrolment protocols' key
// labelled label.
func ensureEnrolKey(ctx context.Context, p *platform, label string, kt hsm.KeyType) (*hsm.Signer, error) {
	return ensureServiceKey(ctx, p, "pkcs11:object="+label, kt)
}

// ensureCMPServer returns the CMP server's key and its self-signed
// certificate (cmp.EnsureServerCertificate), creating what is missing.
func ensureCMPServer(ctx context.Context, p *platform) (*hsm.Signer, *x509.Certificate, error) {
	key, err := ensureEnrolKey(ctx, p, cmpServerKeyLabel, hsm.ECP256)
	if err != nil {
		return nil, nil, err
	}
	var root *x509.Certificate // names the server certificate's organisation
	if certs, err := verify.ReadPEMFile(caCertPath(p.cfg, p.cfg.CA.Root.Name)); err == nil {
		root = certs[0]
	}
	cert, err := cmp.EnsureServerCertificate(cmpServerCertPath(p), key, root)
	return key, cert, err
}

// wireEnrol serves the enrolment records (POST /api/v1/enrolments for
// registration officers), the CMP server and the EST server, over the CA,
// the revocation service and the CA's renewal, which the earlier wirings
// left in s: a CMP kur or an EST simplereenroll is a renewal. In the
// background it revokes the CMP certificates whose certConf did not come
// in time (cmp.Server.ExpireEvery) and purges the finished enrolments and
// CMP transactions.
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
		Profiles: enrol.HolderProfiles(),
	})
	if err != nil {
		return err
	}
	svc.Register(s.mux, p.authn.Require)
	root, _ := a.CACertificate("root")
	issuing := a.CurrentCACertificates(p.cfg.CA.IssuerNames())
	srv, err := cmp.New(cmp.Config{
		Enrol: svc, Transactions: p.db.Enrolments(), Revoker: s.revocations, Issuer: a,
		Key: cmpKey, Certificate: cmpCert, CACertificates: issuing, Root: root,
		RA:     cmp.RegistrationOfficers(p.authn.PrincipalOfCertificate),
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
	s.background = append(s.background, func(ctx context.Context) {
		enrol.PurgeEvery(ctx, p.db.Enrolments(), time.Minute, time.Now, p.logger.With("service", "enrol"))
	}, func(ctx context.Context) {
		srv.ExpireEvery(ctx, time.Minute, p.logger.With("service", "cmp"))
	})
	return nil
}
