package revocation

import (
	"context"
	"crypto/x509"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/thiqa/thiqa/ca/ocsp"
	"github.com/thiqa/thiqa/internal/atomicfile"
)

// previousLabelHeader is the PEM header of the previous responder file
// that names the label of its key on the token.
const previousLabelHeader = "Key-Label"

// PreviousPath is where the responder that caName's current one replaced
// is kept (PEM, its key's label in a Key-Label header): a restart while
// the clock is before the current one's notBefore signs with it.
func (rp *Responders) PreviousPath(caName string) string {
	return filepath.Join(rp.o.Dir, "ocsp-"+caName+".previous.pem")
}

// keepPrevious copies caName's current responder (certificate and the
// label of its key) to PreviousPath before next replaces it. Nothing is
// kept when there is no current responder or it is next already.
func (rp *Responders) keepPrevious(caName string, next *x509.Certificate) error {
	certPath, labelPath := rp.Paths(caName)
	cur, err := readResponderCert(certPath)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return nil // an unreadable current file is not kept: load reports it
	}
	if cur.Equal(next) {
		return nil
	}
	labels, err := readLabels(labelPath)
	if err != nil {
		labels = []string{""}
	}
	blk := &pem.Block{Type: "CERTIFICATE", Bytes: cur.Raw}
	if labels[0] != "" {
		blk.Headers = map[string]string{previousLabelHeader: labels[0]}
	}
	if err := atomicfile.Write(rp.PreviousPath(caName), pem.EncodeToMemory(blk), 0o644); err != nil {
		return fmt.Errorf("keeping the previous OCSP responder of %s: %w", caName, err)
	}
	return nil
}

// ErrNoPreviousResponder means there is no previous responder that can
// sign now: none was kept, it is not valid now, or its key is no longer on
// the token.
var ErrNoPreviousResponder = errors.New("no previous OCSP responder valid now")

// Previous returns the responder that current, caName's responder, replaced
// when current is not valid yet at now (a restart just after a renewal
// with the clock a little behind the CA's) and that one is valid at now
// and its key still on the token: it signs until current becomes valid
// (ocsp.Issuer.Previous). Otherwise it returns an error wrapping
// ErrNoPreviousResponder.
func (rp *Responders) Previous(ctx context.Context, caName string, current *x509.Certificate, now time.Time) (ocsp.ResponderCert, error) {
	if !now.Before(current.NotBefore) {
		return ocsp.ResponderCert{}, fmt.Errorf("%w: the current responder of %s is valid", ErrNoPreviousResponder, caName)
	}
	caCert, ok := rp.o.CA.CACertificate(caName)
	if !ok {
		return ocsp.ResponderCert{}, fmt.Errorf("no issuing CA %q", caName)
	}
	path := rp.PreviousPath(caName)
	raw, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return ocsp.ResponderCert{}, fmt.Errorf("%w: none kept for %s", ErrNoPreviousResponder, caName)
	}
	if err != nil {
		return ocsp.ResponderCert{}, fmt.Errorf("reading the previous OCSP responder of %s: %w", caName, err)
	}
	blk, rest := pem.Decode(raw)
	if blk == nil || blk.Type != "CERTIFICATE" || strings.TrimSpace(string(rest)) != "" {
		return ocsp.ResponderCert{}, fmt.Errorf("%s: want exactly one PEM CERTIFICATE block", path)
	}
	cert, err := x509.ParseCertificate(blk.Bytes)
	if err != nil {
		return ocsp.ResponderCert{}, fmt.Errorf("%s: %w", path, err)
	}
	if cert.Equal(current) || now.Before(cert.NotBefore) || !now.Before(cert.NotAfter) {
		return ocsp.ResponderCert{}, fmt.Errorf("%w: the one kept for %s (serial %s) is not valid at %s", ErrNoPreviousResponder, caName,
			hex.EncodeToString(cert.SerialNumber.Bytes()), now.UTC().Format(time.RFC3339))
	}
	if err := cert.CheckSignatureFrom(caCert); err != nil {
		return ocsp.ResponderCert{}, fmt.Errorf("%s is not issued by CA %s: %w", path, caName, err)
	}
	label := blk.Headers[previousLabelHeader]
	if label != "" {
		key, err := rp.o.Keys.Key(ctx, label)
		if err == nil && certifies(cert, key) {
			return ocsp.ResponderCert{Cert: cert, Signer: key}, nil
		}
		if err != nil && !errors.Is(err, fs.ErrNotExist) {
			return ocsp.ResponderCert{}, fmt.Errorf("previous responder key %q of %s: %w", label, caName, err)
		}
	}
	// The label kept is not its key's (or none was): look among the CA's
	// responder keys (findKey; the bare prefix names no key, so it goes on
	// to the renewal recorded and then every responder key of the CA).
	rc, found, err := rp.findKey(ctx, caName, cert, []string{"ocsp-" + caName + "-"})
	if err != nil {
		return ocsp.ResponderCert{}, err
	}
	if found == "" {
		return ocsp.ResponderCert{}, fmt.Errorf("%w: the key of the one kept for %s is no longer on the token", ErrNoPreviousResponder, caName)
	}
	return rc, nil
}

// notRevoked returns nil when src, the store's revocations, knows cert as
// issued by the CA caName and not revoked; otherwise an error wrapping
// ErrNoPreviousResponder (or the store's error). A responder replaced
// because it was revoked (`thiqa revoke`, a key compromise) stays in
// PreviousPath: this keeps it from signing after a restart.
func notRevoked(ctx context.Context, src ocsp.StatusSource, caName string, cert *x509.Certificate) error {
	serial := hex.EncodeToString(cert.SerialNumber.Bytes())
	st, err := src.Status(ctx, caName, cert.SerialNumber)
	if err != nil {
		return fmt.Errorf("status of the previous OCSP responder of %s (serial %s): %w", caName, serial, err)
	}
	switch st.State {
	case ocsp.Good:
		return nil
	case ocsp.Revoked:
		return fmt.Errorf("%w: the one kept for %s (serial %s) was revoked at %s", ErrNoPreviousResponder, caName, serial,
			st.RevokedAt.UTC().Format(time.RFC3339))
	default:
		return fmt.Errorf("%w: the one kept for %s (serial %s) is not known as issued by it", ErrNoPreviousResponder, caName, serial)
	}
}
