package cmp

import (
	"context"
	"crypto"
	"crypto/rand"
	"crypto/sha1"
	"crypto/x509"
	"encoding/asn1"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/thiqa/thiqa/internal/atomicfile"
	"github.com/thiqa/thiqa/internal/auth"
	"github.com/thiqa/thiqa/internal/pemcert"
	"github.com/thiqa/thiqa/internal/selfsigned"
	"github.com/thiqa/thiqa/policies"
)

// ServerCertValidity is how long a self-signed CMP server certificate is
// valid.
const ServerCertValidity = 3 * 365 * 24 * time.Hour

// oidCMCRA is id-kp-cmcRA (RFC 6402): the CMP server's certificate says it
// protects CMP messages as a registration authority.
var oidCMCRA = asn1.ObjectIdentifier{1, 3, 6, 1, 5, 5, 7, 3, 28}

// EnsureServerCertificate returns the CMP server's self-signed certificate
// (digitalSignature, id-kp-cmcRA) kept at path, which clients pin (openssl
// cmp -srvcert), making it for key when there is none. The subject names
// the organisation and country of root (nil: "Thiqa"). A certificate at
// path that holds another key than key is an error: nothing is replaced.
func EnsureServerCertificate(path string, key crypto.Signer, root *x509.Certificate) (*x509.Certificate, error) {
	if raw, err := os.ReadFile(path); err == nil {
		cert, err := pemcert.Parse(raw)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", path, err)
		}
		if pub, ok := key.Public().(interface{ Equal(crypto.PublicKey) bool }); !ok || !pub.Equal(cert.PublicKey) {
			uri := "" // the key's pkcs11: URI, when it has one
			if k, ok := key.(interface{ URI() string }); ok {
				uri = k.URI()
			}
			return nil, fmt.Errorf("%s holds another key than the CMP server's %s on the token (nothing was replaced)", path, uri)
		}
		return cert, nil
	} else if !errors.Is(err, os.ErrNotExist) {
		return nil, err
	}
	serial, err := selfsigned.Serial()
	if err != nil {
		return nil, err
	}
	spki, err := x509.MarshalPKIXPublicKey(key.Public())
	if err != nil {
		return nil, err
	}
	ski := sha1.Sum(spki)
	now := time.Now().UTC()
	tmpl := &x509.Certificate{
		SerialNumber: serial,
		Subject:      selfsigned.Name(root, func(org string) string { return org + " CMP server" }),
		NotBefore:    now.Add(-time.Minute), NotAfter: now.Add(ServerCertValidity),
		KeyUsage:              x509.KeyUsageDigitalSignature,
		UnknownExtKeyUsage:    []asn1.ObjectIdentifier{oidCMCRA},
		BasicConstraintsValid: true,
		SubjectKeyId:          ski[:],
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
	if err != nil {
		return nil, fmt.Errorf("self-signing the CMP server certificate: %w", err)
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return nil, err
	}
	if err := atomicfile.WriteNew(path, pemcert.Encode(der), 0o644); err != nil {
		return nil, fmt.Errorf("writing %s: %w", path, err)
	}
	return x509.ParseCertificate(der)
}

// errNotRA refuses a certificate whose holder is no registration officer.
var errNotRA = errors.New("not a registration officer")

// RegistrationOfficers recognises as registration authorities the
// certificates whose principal (as principal finds it, such as
// auth.Authenticator.PrincipalOfCertificate) is a registration officer,
// named by the principal's subject.
func RegistrationOfficers(principal func(ctx context.Context, leaf *x509.Certificate, intermediates []*x509.Certificate) (*auth.Principal, error)) RAChecker {
	return func(ctx context.Context, cert *x509.Certificate, chain []*x509.Certificate) (string, error) {
		pr, err := principal(ctx, cert, chain)
		if err != nil {
			return "", err
		}
		if !pr.Has(policies.RoleRegistrationOfficer) {
			return "", errNotRA
		}
		return pr.Subject, nil
	}
}
