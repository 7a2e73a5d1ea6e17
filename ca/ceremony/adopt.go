package ceremony

import (
	"bytes"
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"math/big"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/thiqa/thiqa/ca"
	"github.com/thiqa/thiqa/ca/revocation"
	"github.com/thiqa/thiqa/internal/atomicfile"
	"github.com/thiqa/thiqa/internal/pemcert"
)

// actRootAdopt records a root that was created elsewhere (a deployment
// whose root key was on its online token) and taken into the folder.
const actRootAdopt = "ceremony.root.adopt"

// AdoptCRLNumberGap is how far above the adopted deployment's last root
// CRL number the ceremony's CRL numbers continue: the online servers may
// sign more root CRLs between the copy of their token and the retirement
// of the online key (thiqa ca root retire-online), and the numbers of a
// CRL issuer must only grow (RFC 5280, 5.2.3).
const AdoptCRLNumberGap = 1000

// AdoptedCA is an issuing CA certificate the adopted root signed before
// it came to the ceremony.
type AdoptedCA struct {
	// Name is the CA's name in the deployment (citizen, citizen_2, …).
	Name string
	// Cert is its certificate, signed by the root.
	Cert *x509.Certificate
}

// AdoptRequest describes an existing root to take into the folder.
type AdoptRequest struct {
	// Root is the deployment's root certificate.
	Root *x509.Certificate
	// Issued are the issuing CA certificates the root signed.
	Issued []AdoptedCA
	// LastCRL is the last root CRL the deployment published (DER): the
	// revocations it lists stay on every CRL the ceremony signs, whose
	// numbers continue AdoptCRLNumberGap above its number.
	LastCRL []byte
	// PublicBaseURL is the deployment's, as the issuing CA certificates
	// name it (recorded with each of them).
	PublicBaseURL string
}

// rootAdopted is the details of actRootAdopt.
type rootAdopted struct {
	rootCreated
	// ProofSHA256 is the SHA-256 of the message the key signed on the
	// offline token, the signature verified with the certificate's key.
	ProofSHA256 string      `json:"proofSHA256"`
	Issued      []caSigned  `json:"issued"`
	Revoked     []caRevoked `json:"revoked"`
	// AdoptedCRL is the number and SHA-256 of the deployment's last root
	// CRL; NextCRLAfter the number the ceremony's CRLs continue after.
	AdoptedCRL       string `json:"adoptedCRL"`
	AdoptedCRLSHA256 string `json:"adoptedCRLSHA256"`
	NextCRLAfter     string `json:"nextCRLAfter"`
}

// applyAdopted takes an adoption into the state: the root, the issuing
// CAs it certified, its revocations (listed since the adopted CRL) and
// the CRL number its CRLs continue after.
func (s *state) applyAdopted(d rootAdopted) error {
	s.root = &d.rootCreated
	for _, c := range d.Issued {
		s.issued[c.Serial] = c
	}
	adopted, ok := new(big.Int).SetString(d.AdoptedCRL, 10)
	after, ok2 := new(big.Int).SetString(d.NextCRLAfter, 10)
	if !ok || !ok2 {
		return fmt.Errorf("CRL numbers %q, %q", d.AdoptedCRL, d.NextCRLAfter)
	}
	for _, r := range d.Revoked {
		s.revoked[r.Serial] = r
		s.listedIn[r.Serial] = adopted
	}
	s.lastCRL = after
	return nil
}

// AdoptRoot takes the root of a deployment that kept its key on the
// online token into the folder, from a copy of that token (the HSM's own
// backup or clone; for SoftHSM a copy of its token folder) that Options
// names: the key labelled RootKeyLabel must be the key of req.Root and
// must sign (a fresh message, verified with the certificate's key). It
// writes root.pem and records the root, the issuing CAs it certified and
// the revocations and number of its last CRL in the log, as the first act
// of the folder: from then on `ca sign`, `ca crl` and `audit verify` work
// on it as on a root the ceremony created. Run again on a folder that
// adopted this root, it checks the key again and changes nothing; a
// folder with another root is refused.
func (f *Folder) AdoptRoot(ctx context.Context, req AdoptRequest, w io.Writer) error {
	root := req.Root
	if err := root.CheckSignatureFrom(root); err != nil || !root.IsCA {
		return fmt.Errorf("the root certificate %s is not a self-signed CA certificate: nothing was adopted", root.Subject)
	}
	certSum := sha256Hex(root.Raw)
	if r := f.state.root; r != nil && r.CertSHA256 != certSum {
		return fmt.Errorf("the ceremony folder %s %w (%s, certificate SHA-256 %s): nothing was adopted", f.o.Dir, ErrOtherRoot, r.Subject, r.CertSHA256)
	}
	if old, err := os.ReadFile(f.path(RootFile)); err == nil {
		if c, err := pemcert.Parse(old); err != nil || !bytes.Equal(c.Raw, root.Raw) {
			return fmt.Errorf("%s exists and is not this root's certificate: move it away (nothing was adopted)", f.path(RootFile))
		}
	} else if !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("reading %s: %w", f.path(RootFile), err)
	}
	details, err := adoptedDetails(req)
	if err != nil {
		return err
	}
	tok, err := f.o.OpenToken(ctx)
	if err != nil {
		return err
	}
	defer tok.Close()
	key, err := tok.FindKey(ctx, f.o.RootKeyLabel)
	if err != nil {
		return fmt.Errorf("the root key %s on the offline token: %w (nothing was adopted)", f.o.RootKey, err)
	}
	if pub, ok := key.Public().(interface{ Equal(crypto.PublicKey) bool }); !ok || !pub.Equal(root.PublicKey) {
		return fmt.Errorf("the key %s on the offline token %w %s: nothing was adopted", key.URI(), ErrNotRootKey, root.Subject)
	}
	proof, err := proveKey(key, root)
	if err != nil {
		return fmt.Errorf("the root key %s on the offline token: %w (nothing was adopted)", key.URI(), err)
	}
	if f.state.root != nil {
		fmt.Fprintf(w, "root %s already adopted in %s; the key %s on the offline token still signs (a signature verified with root.pem)\n",
			root.Subject, f.o.Dir, key.URI())
		return nil
	}
	details.Key, details.ProofSHA256 = key.URI(), proof
	if err := atomicfile.WriteNew(f.path(RootFile), pemcert.Encode(root.Raw), 0o644); err != nil && !errors.Is(err, os.ErrExist) {
		return fmt.Errorf("writing %s: %w", f.path(RootFile), err)
	}
	for _, c := range req.Issued {
		if err := f.keepSame("issued", issuedName(c.Name, hex.EncodeToString(c.Cert.SerialNumber.Bytes())), pemcert.Encode(c.Cert.Raw)); err != nil {
			return err
		}
	}
	if err := f.keepSame("crls", "adopted-"+details.AdoptedCRL+".crl", req.LastCRL); err != nil {
		return err
	}
	rec, err := f.record(ctx, actRootAdopt, root.Subject.String(), details)
	if err != nil {
		return err
	}
	fmt.Fprintf(w, "root CA adopted in %s\n", f.o.Dir)
	fmt.Fprintf(w, "  subject       %s\n", root.Subject)
	fmt.Fprintf(w, "  key           %s (%s, on the offline token: it signed, and the signature verified with the certificate)\n", key.URI(), details.KeyType)
	fmt.Fprintf(w, "  certificate   %s, valid %s to %s\n", f.path(RootFile), root.NotBefore.Format(time.RFC3339), root.NotAfter.Format(time.RFC3339))
	fmt.Fprintf(w, "  SPKI SHA-256  %s\n", details.SPKISHA256)
	for _, c := range details.Issued {
		fmt.Fprintf(w, "  issuing CA    %s, serial %s\n", c.Name, c.Serial)
	}
	fmt.Fprintf(w, "  last CRL      number %s (%d revoked issuing CA(s)); the ceremony's CRLs continue after %s\n", details.AdoptedCRL, len(details.Revoked), details.NextCRLAfter)
	printRecord(w, rec)
	fmt.Fprintf(w, "SHA-256 fingerprint: %s\n", ca.Fingerprint(root.Raw))
	fmt.Fprintf(w, "next: sign the root CRL here (thiqa ca crl --ceremony %s --out root.crl), then on the online side: thiqa ca root retire-online --data D --crl root.crl\n", f.o.Dir)
	return nil
}

// adoptedDetails checks what req says the root did and describes it for
// the log (without the key and the proof).
func adoptedDetails(req AdoptRequest) (rootAdopted, error) {
	root := req.Root
	spki, err := spkiHex(root.PublicKey)
	if err != nil {
		return rootAdopted{}, err
	}
	d := rootAdopted{rootCreated: rootCreated{
		Subject: root.Subject.String(), Serial: hex.EncodeToString(root.SerialNumber.Bytes()), KeyType: keyTypeOf(root.PublicKey),
		SPKISHA256: spki, CertSHA256: sha256Hex(root.Raw), NotBefore: root.NotBefore, NotAfter: root.NotAfter, Adopted: true,
	}}
	names := map[string]string{}
	for _, c := range req.Issued {
		if err := c.Cert.CheckSignatureFrom(root); err != nil {
			return d, fmt.Errorf("issuing CA %s: the root did not sign its certificate: %w (nothing was adopted)", c.Name, err)
		}
		s, err := spkiHex(c.Cert.PublicKey)
		if err != nil {
			return d, fmt.Errorf("issuing CA %s: %w", c.Name, err)
		}
		serial := hex.EncodeToString(c.Cert.SerialNumber.Bytes())
		names[serial] = c.Name
		pathLen := c.Cert.MaxPathLen
		if !c.Cert.MaxPathLenZero && pathLen == 0 {
			pathLen = -1
		}
		d.Issued = append(d.Issued, caSigned{Name: c.Name, Subject: c.Cert.Subject.String(), Serial: serial, SPKISHA256: s,
			CertSHA256: sha256Hex(c.Cert.Raw), PathLen: pathLen, NotBefore: c.Cert.NotBefore, NotAfter: c.Cert.NotAfter,
			PublicBaseURL: req.PublicBaseURL, Policies: policyStrings(c.Cert)})
	}
	rl, err := x509.ParseRevocationList(req.LastCRL)
	if err != nil {
		return d, fmt.Errorf("the deployment's last root CRL: %w", err)
	}
	if err := rl.CheckSignatureFrom(root); err != nil || !bytes.Equal(rl.RawIssuer, root.RawSubject) {
		return d, fmt.Errorf("the deployment's last root CRL is not the root's (its signature does not verify with the root's key): nothing was adopted")
	}
	if rl.Number == nil {
		return d, errors.New("the deployment's last root CRL has no CRL number: nothing was adopted")
	}
	for _, e := range rl.RevokedCertificateEntries {
		reason := revocation.Reason(e.ReasonCode)
		if _, err := revocation.ParseReason(reason.String()); err != nil {
			return d, fmt.Errorf("the deployment's last root CRL revokes serial %x for reason code %d: %w", e.SerialNumber, e.ReasonCode, err)
		}
		serial := hex.EncodeToString(e.SerialNumber.Bytes())
		d.Revoked = append(d.Revoked, caRevoked{Serial: serial, Name: names[serial], Reason: reason.String(), RevokedAt: e.RevocationTime.UTC()})
	}
	d.AdoptedCRL, d.AdoptedCRLSHA256 = rl.Number.String(), sha256Hex(req.LastCRL)
	d.NextCRLAfter = new(big.Int).Add(rl.Number, big.NewInt(AdoptCRLNumberGap)).String()
	return d, nil
}

// proveKey has key sign a fresh message and verifies the signature with
// the certificate's key; it returns the message's SHA-256.
func proveKey(key Key, cert *x509.Certificate) (string, error) {
	nonce := make([]byte, 32)
	if _, err := rand.Read(nonce); err != nil {
		return "", err
	}
	msg := append([]byte("thiqa ceremony root adoption "+sha256Hex(cert.Raw)+" "), nonce...)
	digest := sha256.Sum256(msg)
	sig, err := key.Sign(rand.Reader, digest[:], crypto.SHA256)
	if err != nil {
		return "", fmt.Errorf("signing a test message: %w", err)
	}
	ok := false
	switch pub := cert.PublicKey.(type) {
	case *ecdsa.PublicKey:
		ok = ecdsa.VerifyASN1(pub, digest[:], sig)
	case *rsa.PublicKey:
		ok = rsa.VerifyPKCS1v15(pub, crypto.SHA256, digest[:], sig) == nil
	case ed25519.PublicKey:
		return "", errors.New("an Ed25519 root is not supported")
	}
	if !ok {
		return "", errors.New("its signature of a test message does not verify with the root certificate's key")
	}
	return sha256Hex(msg), nil
}

// keyTypeOf names a public key's type as the ceremony records it.
func keyTypeOf(pub any) string {
	switch k := pub.(type) {
	case *ecdsa.PublicKey:
		return "ec-" + strings.ToLower(strings.ReplaceAll(k.Curve.Params().Name, "-", ""))
	case *rsa.PublicKey:
		return fmt.Sprintf("rsa-%d", k.N.BitLen())
	}
	return fmt.Sprintf("%T", pub)
}

// policyStrings lists a certificate's policy OIDs.
func policyStrings(c *x509.Certificate) []string {
	var out []string
	for _, p := range c.Policies {
		out = append(out, p.String())
	}
	slices.Sort(out)
	return out
}

// keepSame is keep, but a copy already there with the same content (a run
// interrupted before its record) is no error.
func (f *Folder) keepSame(sub, name string, data []byte) error {
	if old, err := os.ReadFile(filepath.Join(f.path(sub), name)); err == nil {
		if bytes.Equal(old, data) {
			return nil
		}
		return fmt.Errorf("%s exists with another content, and the ceremony log does not record it: move it away (nothing was adopted)", filepath.Join(f.path(sub), name))
	}
	_, err := f.keep(sub, name, data)
	return err
}
