package ceremony

import (
	"context"
	"crypto/x509"
	"encoding/hex"
	"fmt"
	"io"
	"time"

	"github.com/thiqa/thiqa/ca"
	"github.com/thiqa/thiqa/internal/atomicfile"
	"github.com/thiqa/thiqa/internal/pemcert"
)

// IssuingRequest describes an issuing CA to certify.
type IssuingRequest struct {
	// Name is the issuing CA (citizen, organisation, tsa); CSR its request
	// (PEM or DER), read from CSRFile.
	Name    string
	CSR     []byte
	CSRFile string
	// Policies are the policy OIDs the certificate lists
	// (ca.IssuingCAPolicies); PathLen its pathLenConstraint.
	Policies []string
	PathLen  int
	// NotBefore and NotAfter bound its validity (cut to the root's).
	NotBefore, NotAfter time.Time
	// Out is where the certificate goes (PEM); it must not exist.
	Out string
}

// CertifyIssuingCA has the root certify an issuing CA from the CSR the
// online side made (thiqa init --root-cert, thiqa ca rollover). The
// certificate follows EN 319 412-1 / RFC 5280 for a CA (cA=true,
// pathLenConstraint, keyCertSign and cRLSign), lists the policies of the
// profiles the CA issues, and names the root's certificate and CRL under
// the deployment's public base URL; it is linted before the root key signs
// it. A CSR for a key that is already the root's or an issuing CA's is
// refused, with nothing written. It writes the certificate to req.Out and
// a copy in issued/, records the act and tells w.
func (f *Folder) CertifyIssuingCA(ctx context.Context, req IssuingRequest, w io.Writer) error {
	var cert *x509.Certificate
	var refused error
	err := f.withRoot(ctx, func(root *x509.Certificate, key Key) error {
		cert, refused = ca.CertifyIssuingCA(root, key, ca.IssuingCARequest{
			CSR: req.CSR, BaseURL: f.o.PublicBaseURL, Policies: req.Policies, PathLen: req.PathLen, NotBefore: req.NotBefore, NotAfter: req.NotAfter,
			InUse: f.state.inUse(f.o.Dir),
		})
		return nil
	})
	if err != nil {
		return err
	}
	if refused != nil {
		return fmt.Errorf("refused to certify %s: %w (nothing was signed)", req.CSRFile, refused)
	}
	// The certificate leaves the ceremony folder (--out) only once the log
	// records it: a certificate the log does not know could be neither
	// revoked by serial nor refused as a key already certified.
	certPEM := pemcert.Encode(cert.Raw)
	serial := hex.EncodeToString(cert.SerialNumber.Bytes())
	spki, err := spkiHex(cert.PublicKey)
	if err != nil {
		return err
	}
	kept, err := f.keep("issued", issuedName(req.Name, serial), certPEM)
	if err != nil {
		return fmt.Errorf("%w (the certificate was signed but not recorded or written to --out: run the command again)", err)
	}
	rec, err := f.record(ctx, actCASign, req.Name, caSigned{
		Name: req.Name, Subject: cert.Subject.String(), Serial: serial, SPKISHA256: spki, CertSHA256: sha256Hex(cert.Raw),
		CSRSHA256: sha256Hex(req.CSR), PathLen: req.PathLen, NotBefore: cert.NotBefore, NotAfter: cert.NotAfter,
		PublicBaseURL: f.o.PublicBaseURL, Policies: req.Policies,
	})
	if err != nil {
		return fmt.Errorf("%w (the certificate was signed, kept in %s, but not written to --out: see thiqa audit verify --ceremony %s before going on)", err, kept, f.o.Dir)
	}
	if err := atomicfile.WriteNew(req.Out, certPEM, 0o644); err != nil {
		return fmt.Errorf("writing --out: %w (the certificate, serial %s, is signed and recorded in the ceremony log: copy %s instead)", err, serial, kept)
	}
	fmt.Fprintf(w, "issuing CA %s certified by the root\n", req.Name)
	fmt.Fprintf(w, "  subject       %s\n", cert.Subject)
	fmt.Fprintf(w, "  serial        %s\n", serial)
	fmt.Fprintf(w, "  valid         %s to %s\n", cert.NotBefore.Format(time.RFC3339), cert.NotAfter.Format(time.RFC3339))
	fmt.Fprintf(w, "  key SPKI      SHA-256 %s\n", spki)
	fmt.Fprintf(w, "  URLs          %s, %s\n", cert.IssuingCertificateURL[0], cert.CRLDistributionPoints[0])
	fmt.Fprintf(w, "  certificate   %s (copy in %s)\n", req.Out, kept)
	printRecord(w, rec)
	fmt.Fprintf(w, "SHA-256 fingerprint: %s\n", ca.Fingerprint(cert.Raw))
	fmt.Fprintf(w, "next: on the online side: thiqa ca import --data D --name %s --cert %s\n", req.Name, req.Out)
	return nil
}

// issuedName is the name in issued/ of the copy of the certificate with
// serial (lower-case hex) the root made for the issuing CA name.
func issuedName(name, serial string) string { return name + "-" + serial + ".pem" }
