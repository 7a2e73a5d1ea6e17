package ca

import (
	"bytes"
	"encoding/asn1"
	"encoding/base64"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"time"

	"context"
	"crypto"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/pem"
	"fmt"
	"golang.org/x/crypto/ocsp"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/thiqa/thiqa/internal/testenv"
	"github.com/thiqa/thiqa/policies"
)

// minimalPDF returns a valid one-page PDF with a correct xref table.
func minimalPDF() []byte {
	objs := []string{
		"<< /Type /Catalog /Pages 2 0 R >>",
		"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
		"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 200 200] /Resources << >> >>",
	}
	var b bytes.Buffer
	b.WriteString("%PDF-1.7\n")
	offs := make([]int, len(objs))
	for i, o := range objs {
		offs[i] = b.Len()
		fmt.Fprintf(&b, "%d 0 obj\n%s\nendobj\n", i+1, o)
	}
	xref := b.Len()
	fmt.Fprintf(&b, "xref\n0 %d\n0000000000 65535 f \n", len(objs)+1)
	for _, o := range offs {
		fmt.Fprintf(&b, "%010d 00000 n \n", o)
	}
	fmt.Fprintf(&b, "trailer\n<< /Size %d /Root 1 0 R >>\nstartxref\n%d\n%%%%EOF\n", len(objs)+1, xref)
	return b.Bytes()
}

// TestPdfsigTrustsSigningCertificates is the real check behind the proxy of
// TestNSSTrustsSigningCertificates: poppler's pdfsig signs a PDF through NSS
// with an RSA key certified by Thiqa (pdfsig cannot sign with ECDSA; the CA
// chain stays P-384) and then validates it, trusting only the Thiqa root.
func TestPdfsigTrustsSigningCertificates(t *testing.T) {
	pdfsig := testenv.Tool(t, "pdfsig")
	certutil := testenv.Tool(t, "certutil")
	pk12util := testenv.Tool(t, "pk12util")
	openssl := testenv.Tool(t, "openssl")
	// The certificates' AIA points at this server: it serves the CA
	// certificates and answers OCSP "good" for every serial, signed by the
	// issuing CA. pdfsig (poppler 22.12) checks OCSP by default, and reports
	// "Unknown issue with Certificate" when the responder is unreachable,
	// even with -no-ocsp: it reads NSS's thread error code after a successful
	// verification, so a stale soft-failure code spoils the verdict.
	var pki *testPKI
	mux := http.NewServeMux()
	srv := httptest.NewServer(mux)
	defer srv.Close()
	pki = newTestPKIAt(t, func(t testing.TB) crypto.Signer { return p384(t) }, srv.URL)
	mux.Handle("GET /certs/", NewHandler(pki.authority, HandlerOptions{}))
	ocspHandler := func(w http.ResponseWriter, r *http.Request) {
		var der []byte
		if r.Method == http.MethodPost {
			der, _ = io.ReadAll(io.LimitReader(r.Body, 10000))
		} else {
			p, _ := url.PathUnescape(strings.TrimPrefix(r.URL.Path, "/ocsp/"))
			der, _ = base64.StdEncoding.DecodeString(p)
		}
		req, err := ocsp.ParseRequest(der)
		if err != nil {
			w.WriteHeader(http.StatusBadRequest)
			return
		}
		for _, is := range pki.issuers {
			h := req.HashAlgorithm.New()
			h.Write(rawSubjectPublicKey(t, is.cert))
			if !bytes.Equal(h.Sum(nil), req.IssuerKeyHash) {
				continue
			}
			resp, err := ocsp.CreateResponse(is.cert, is.cert, ocsp.Response{
				Status: ocsp.Good, SerialNumber: req.SerialNumber, ThisUpdate: time.Now().Add(-time.Minute), NextUpdate: time.Now().Add(time.Hour),
			}, is.signer)
			if err != nil {
				t.Error(err)
				return
			}
			w.Header().Set("Content-Type", "application/ocsp-response")
			_, _ = w.Write(resp)
			return
		}
		_, _ = w.Write(ocsp.UnauthorizedErrorResponse)
	}
	mux.HandleFunc("POST /ocsp", ocspHandler)
	mux.HandleFunc("GET /ocsp/", ocspHandler)
	run := func(name string, args ...string) string {
		t.Helper()
		out, err := exec.Command(name, args...).CombinedOutput()
		if err != nil {
			t.Fatalf("%s %v: %v\n%s", filepath.Base(name), args, err, out)
		}
		return string(out)
	}
	for _, prof := range []string{policies.ProfileCitizenSigning, policies.ProfileOrganisationSeal} {
		t.Run(prof, func(t *testing.T) {
			dir := t.TempDir()
			key, err := rsa.GenerateKey(rand.Reader, 2048)
			if err != nil {
				t.Fatal(err)
			}
			got, err := pki.authority.Issue(context.Background(), Request{Profile: prof, Subject: subjectFor(prof), CSR: newCSR(t, key)})
			if err != nil {
				t.Fatal(err)
			}
			p8, _ := x509.MarshalPKCS8PrivateKey(key)
			keyPath := filepath.Join(dir, "key.pem")
			if err := os.WriteFile(keyPath, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: p8}), 0o600); err != nil {
				t.Fatal(err)
			}
			leaf := writePEM(t, dir, "leaf.pem", got.Certificate)
			chain := writePEM(t, dir, "chain.pem", got.Chain[0])
			p12 := filepath.Join(dir, "signer.p12")
			run(openssl, "pkcs12", "-export", "-inkey", keyPath, "-in", leaf, "-certfile", chain, "-name", "signer", "-passout", "pass:", "-out", p12)

			unsigned := filepath.Join(dir, "in.pdf")
			if err := os.WriteFile(unsigned, minimalPDF(), 0o600); err != nil {
				t.Fatal(err)
			}
			signed := filepath.Join(dir, "signed.pdf")
			trusting, untrusting := filepath.Join(dir, "nss"), filepath.Join(dir, "nss-empty")
			for _, db := range []string{trusting, untrusting} {
				if err := os.Mkdir(db, 0o700); err != nil {
					t.Fatal(err)
				}
				run(certutil, "-N", "-d", "sql:"+db, "--empty-password")
			}
			run(pk12util, "-i", p12, "-d", "sql:"+trusting, "-W", "", "-K", "")
			run(certutil, "-A", "-d", "sql:"+trusting, "-n", "thiqa-root", "-t", "CT,C,C", "-i", writePEM(t, dir, "root.pem", pki.root))
			run(pdfsig, "-nssdir", "sql:"+trusting, "-nick", "signer", "-add-signature", unsigned, signed)

			out := run(pdfsig, "-nssdir", "sql:"+trusting, signed)
			if !strings.Contains(out, "Signature is Valid.") || !strings.Contains(out, "Certificate is Trusted.") {
				t.Fatalf("pdfsig does not trust the %s certificate:\n%s", prof, out)
			}
			// Negative control: without the Thiqa root the same file is not trusted.
			out = run(pdfsig, "-nssdir", "sql:"+untrusting, signed)
			if !strings.Contains(out, "Signature is Valid.") || strings.Contains(out, "Certificate is Trusted.") {
				t.Fatalf("pdfsig verdict without the root:\n%s", out)
			}
		})
	}
}

// rawSubjectPublicKey returns the subjectPublicKey BIT STRING value of c.
func rawSubjectPublicKey(t *testing.T, c *x509.Certificate) []byte {
	var spki struct {
		Algorithm asn1.RawValue
		PublicKey asn1.BitString
	}
	if _, err := asn1.Unmarshal(c.RawSubjectPublicKeyInfo, &spki); err != nil {
		t.Fatal(err)
	}
	return spki.PublicKey.Bytes
}
