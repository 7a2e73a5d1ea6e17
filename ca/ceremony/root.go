package ceremony

import (
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/thiqa/thiqa/ca"
	"github.com/thiqa/thiqa/internal/atomicfile"
	"github.com/thiqa/thiqa/internal/pemcert"
)

// RootRequest describes the root to create.
type RootRequest struct {
	// KeyType is the root key's type ("ec-p384", "rsa-4096").
	KeyType string
	// Subject of the root certificate.
	CommonName, Organization, OrganizationIdentifier, Country string
	// NotBefore and NotAfter bound its validity.
	NotBefore, NotAfter time.Time
	// ConfigFile is the folder's configuration, named in the advice
	// printed at the end.
	ConfigFile string
}

// CheckNoRoot refuses a folder that already has a root, or a root.pem the
// log does not record.
func (f *Folder) CheckNoRoot() error {
	if r := f.state.root; r != nil {
		return fmt.Errorf("the ceremony folder %s already has a root (%s, certificate SHA-256 %s): nothing was created", f.o.Dir, r.Subject, r.CertSHA256)
	}
	if _, err := os.Stat(f.path(RootFile)); err == nil {
		return fmt.Errorf("%s exists but the ceremony log records no root: move it away (nothing was created)", f.path(RootFile))
	}
	return nil
}

// CreateRoot is the first act of the key ceremony: it generates the root
// key on the offline token, self-signs the root certificate (linted before
// the key signs it), writes root.pem and records both in the log, and
// tells w. A folder that already has a root is refused, and so is a root
// key already on the token: nothing changes; on any later failure the new
// key and root.pem are removed again.
func (f *Folder) CreateRoot(ctx context.Context, req RootRequest, w io.Writer) (err error) {
	if err := f.CheckNoRoot(); err != nil {
		return err
	}
	tok, err := f.o.OpenToken(ctx)
	if err != nil {
		return err
	}
	defer tok.Close()
	label := f.o.RootKeyLabel
	if _, err := tok.FindKey(ctx, label); err == nil {
		return fmt.Errorf("the offline token already holds a key %q but the ceremony log records no root: nothing was created or replaced; if an interrupted `thiqa ca root create` left it, start again in a new ceremony folder with a new token, or delete that key from the token", label)
	} else if !errors.Is(err, ErrKeyNotFound) {
		return fmt.Errorf("looking for the root key: %w", err)
	}

	key, err := tok.GenerateKey(ctx, label, req.KeyType)
	if err != nil {
		return fmt.Errorf("generating the root key: %w", err)
	}
	defer func() {
		if err != nil { // leave no root key without its certificate
			_ = tok.DeleteKey(context.WithoutCancel(ctx), label)
		}
	}()
	cert, err := ca.CreateRoot(key, ca.RootConfig{
		CommonName: req.CommonName, Organization: req.Organization, OrganizationIdentifier: req.OrganizationIdentifier,
		Country: req.Country, NotBefore: req.NotBefore, NotAfter: req.NotAfter,
	})
	if err != nil {
		return err
	}
	if err := atomicfile.WriteNew(f.path(RootFile), pemcert.Encode(cert.Raw), 0o644); err != nil {
		return fmt.Errorf("writing %s: %w", f.path(RootFile), err)
	}
	defer func() {
		if err != nil {
			_ = os.Remove(f.path(RootFile))
		}
	}()
	spki, err := spkiHex(cert.PublicKey)
	if err != nil {
		return err
	}
	rec, err := f.record(ctx, actRootCreate, cert.Subject.String(), rootCreated{
		Subject: cert.Subject.String(), Serial: hex.EncodeToString(cert.SerialNumber.Bytes()), Key: key.URI(), KeyType: req.KeyType,
		SPKISHA256: spki, CertSHA256: sha256Hex(cert.Raw), NotBefore: cert.NotBefore, NotAfter: cert.NotAfter,
	})
	if err != nil {
		return err
	}
	fmt.Fprintf(w, "root CA created in %s\n", f.o.Dir)
	fmt.Fprintf(w, "  subject       %s\n", cert.Subject)
	fmt.Fprintf(w, "  key           %s (%s, on the offline token)\n", key.URI(), req.KeyType)
	fmt.Fprintf(w, "  certificate   %s, valid %s to %s\n", f.path(RootFile), cert.NotBefore.Format(time.RFC3339), cert.NotAfter.Format(time.RFC3339))
	fmt.Fprintf(w, "  SPKI SHA-256  %s\n", spki)
	printRecord(w, rec)
	fmt.Fprintf(w, "SHA-256 fingerprint: %s\n", ca.Fingerprint(cert.Raw))
	fmt.Fprintf(w, "next: check publicBaseURL in %s (now %s), then on the online side: thiqa init --data D --root-cert root.pem\n",
		req.ConfigFile, f.o.PublicBaseURL)
	return nil
}
