package revocation

import (
	"context"
	"crypto"
	"crypto/rand"
	"crypto/x509"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"fmt"
	"io/fs"
	"maps"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/thiqa/thiqa/ca"
	"github.com/thiqa/thiqa/ca/hierarchy"
	"github.com/thiqa/thiqa/ca/ocsp"
	"github.com/thiqa/thiqa/internal/atomicfile"
	"github.com/thiqa/thiqa/policies"
)

// KeyStore is the token holding the responder keys, as the responders
// need it (hsm/keyring implements it: keyring.Ring). The keys it returns
// sign every OCSP response: they should be ready to sign all day.
type KeyStore interface {
	// Key returns the key labelled label, or an error wrapping
	// fs.ErrNotExist when the token has none.
	Key(ctx context.Context, label string) (crypto.Signer, error)
	// GenerateKey generates a key labelled label on the token and records
	// its generation in the audit log.
	GenerateKey(ctx context.Context, label string) (crypto.Signer, error)
}

// Certifier is the CA as the responders need it (*ca.Authority): the
// issuing CAs' certificates, and issuance of ocsp-responder certificates.
type Certifier interface {
	CACertificate(name string) (*x509.Certificate, bool)
	Issue(ctx context.Context, req ca.Request) (*ca.Issued, error)
}

// ResponderSubject is the organisation and country an issuing CA's
// responder certificate names ("Thiqa" and "OM" when empty).
type ResponderSubject struct {
	Organization, Country string
}

// ResponderOptions are the parts Responders are built from.
type ResponderOptions struct {
	// Dir holds each CA's current responder certificate
	// (ocsp-<ca>.pem) and the label of its key (ocsp-<ca>.label).
	Dir string
	// Keys is the token; CA issues the responder certificates.
	Keys KeyStore
	CA   Certifier
	// Subjects are the responder certificates' subjects by CA name; the
	// later generations of a CA (hierarchy.GenerationName) that CA knows
	// name the same organisation.
	Subjects map[string]ResponderSubject
	// Actor requests the certificates ("thiqa-init", "thiqa-serve").
	Actor string
}

// Responders issues and loads the delegated OCSP responder of each issuing
// CA: a key generated on the token and an ocsp-responder certificate issued
// by the CA. It is the responder's ocsp.ResponderRenewer.
type Responders struct {
	o  ResponderOptions
	mu sync.Mutex // one renewal at a time writes the files
}

// NewResponders returns the responders o describes.
func NewResponders(o ResponderOptions) *Responders {
	subjects := maps.Clone(o.Subjects)
	for name, sub := range o.Subjects {
		for n := 2; ; n++ {
			g := hierarchy.GenerationName(name, n)
			if _, ok := o.CA.CACertificate(g); !ok {
				break
			}
			subjects[g] = sub
		}
	}
	o.Subjects = subjects
	return &Responders{o: o}
}

// Paths are where a CA's current responder certificate (PEM) and the label
// of its key on the token are kept.
func (rp *Responders) Paths(caName string) (certPath, labelPath string) {
	return filepath.Join(rp.o.Dir, "ocsp-"+caName+".pem"), filepath.Join(rp.o.Dir, "ocsp-"+caName+".label")
}

// load returns the responder recorded in the folder, or an error wrapping
// fs.ErrNotExist when there is none.
func (rp *Responders) load(ctx context.Context, caName string, caCert *x509.Certificate) (ocsp.ResponderCert, error) {
	certPath, labelPath := rp.Paths(caName)
	raw, err := os.ReadFile(certPath)
	if err != nil {
		return ocsp.ResponderCert{}, err
	}
	blk, rest := pem.Decode(raw)
	if blk == nil || blk.Type != "CERTIFICATE" || strings.TrimSpace(string(rest)) != "" {
		return ocsp.ResponderCert{}, fmt.Errorf("%s: want exactly one PEM CERTIFICATE block", certPath)
	}
	cert, err := x509.ParseCertificate(blk.Bytes)
	if err != nil {
		return ocsp.ResponderCert{}, fmt.Errorf("%s: %w", certPath, err)
	}
	rawLabel, err := os.ReadFile(labelPath)
	if err != nil {
		return ocsp.ResponderCert{}, err
	}
	label := strings.TrimSpace(string(rawLabel))
	key, err := rp.o.Keys.Key(ctx, label)
	if err != nil {
		return ocsp.ResponderCert{}, fmt.Errorf("responder key %q of %s: %w", label, caName, err)
	}
	if pub, ok := key.Public().(interface{ Equal(crypto.PublicKey) bool }); !ok || !pub.Equal(cert.PublicKey) {
		return ocsp.ResponderCert{}, fmt.Errorf("responder key %q does not match %s", label, certPath)
	}
	if err := cert.CheckSignatureFrom(caCert); err != nil {
		return ocsp.ResponderCert{}, fmt.Errorf("%s is not issued by CA %s: %w", certPath, caName, err)
	}
	return ocsp.ResponderCert{Cert: cert, Signer: key}, nil
}

// RenewResponder generates a new responder key on the token, has the CA
// issue its ocsp-responder certificate and records both in the folder
// (ocsp.ResponderRenewer). The previous key stays on the token.
func (rp *Responders) RenewResponder(ctx context.Context, caName string) (ocsp.ResponderCert, error) {
	rp.mu.Lock()
	defer rp.mu.Unlock()
	caCert, ok := rp.o.CA.CACertificate(caName)
	if !ok || caName == "root" {
		return ocsp.ResponderCert{}, fmt.Errorf("no issuing CA %q", caName)
	}
	var b [6]byte
	if _, err := rand.Read(b[:]); err != nil {
		return ocsp.ResponderCert{}, fmt.Errorf("choosing a key label: %w", err)
	}
	label := "ocsp-" + caName + "-" + hex.EncodeToString(b[:])
	key, err := rp.o.Keys.GenerateKey(ctx, label)
	if err != nil {
		return ocsp.ResponderCert{}, fmt.Errorf("generating responder key %s: %w", label, err)
	}
	sub := rp.o.Subjects[caName]
	if sub.Organization == "" {
		sub.Organization = "Thiqa"
	}
	if sub.Country == "" {
		sub.Country = "OM"
	}
	issued, err := rp.o.CA.Issue(ctx, ca.Request{
		Profile: policies.ProfileOCSPResponder, CA: caName, PublicKey: key.Public(), KeyGeneratedByService: true, RequestedBy: rp.o.Actor,
		Subject: map[string]string{
			policies.FieldCommonName:       "OCSP Responder " + caName,
			policies.FieldOrganizationName: sub.Organization,
			policies.FieldCountry:          sub.Country,
		},
	})
	if err != nil {
		return ocsp.ResponderCert{}, fmt.Errorf("issuing the responder certificate of %s: %w", caName, err)
	}
	if err := issued.Certificate.CheckSignatureFrom(caCert); err != nil {
		return ocsp.ResponderCert{}, fmt.Errorf("responder certificate of %s: %w", caName, err)
	}
	certPath, labelPath := rp.Paths(caName)
	if err := atomicfile.Write(labelPath, []byte(label+"\n"), 0o644); err != nil {
		return ocsp.ResponderCert{}, err
	}
	if err := atomicfile.Write(certPath, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: issued.Certificate.Raw}), 0o644); err != nil {
		return ocsp.ResponderCert{}, err
	}
	return ocsp.ResponderCert{Cert: issued.Certificate, Signer: key}, nil
}

// Ensure returns an issuing CA's responder, issuing a new one when there is
// none, it no longer loads, or it expires within renewBefore; renewed says
// which.
func (rp *Responders) Ensure(ctx context.Context, caName string, renewBefore time.Duration) (rc ocsp.ResponderCert, renewed bool, err error) {
	caCert, ok := rp.o.CA.CACertificate(caName)
	if !ok {
		return ocsp.ResponderCert{}, false, fmt.Errorf("no issuing CA %q", caName)
	}
	rc, err = rp.load(ctx, caName, caCert)
	if err == nil && time.Now().Add(renewBefore).Before(rc.Cert.NotAfter) {
		return rc, false, nil
	}
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return ocsp.ResponderCert{}, false, err
	}
	rc, err = rp.RenewResponder(ctx, caName)
	return rc, err == nil, err
}
