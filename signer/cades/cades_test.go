package cades

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"encoding/pem"
	"math/big"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/thiqa/thiqa/internal/testenv"
)

func cert(t *testing.T, tmpl, parent *x509.Certificate, pub crypto.PublicKey, key crypto.Signer) *x509.Certificate {
	t.Helper()
	der, err := x509.CreateCertificate(rand.Reader, tmpl, parent, pub, key)
	if err != nil {
		t.Fatal(err)
	}
	c, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func TestSignAlgorithmsWithOpenSSL(t *testing.T) {
	openssl := testenv.Tool(t, "openssl")
	dir := t.TempDir()
	caKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	now := time.Now().Add(-time.Hour)
	caT := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "cades test CA"}, NotBefore: now,
		NotAfter: now.Add(48 * time.Hour), IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign}
	ca := cert(t, caT, caT, caKey.Public(), caKey)
	caPEM := filepath.Join(dir, "ca.pem")
	if err := os.WriteFile(caPEM, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: ca.Raw}), 0o600); err != nil {
		t.Fatal(err)
	}
	p384, _ := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	p256, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	rk, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	content := []byte("%PDF-1.7 the bytes in the byte range")
	cases := []struct {
		name string
		key  crypto.Signer
		opts Options
		want crypto.Hash
	}{
		{"p256-default", p256, Options{}, crypto.SHA256},
		{"p256-sha512", p256, Options{Hash: crypto.SHA512}, crypto.SHA512},
		{"p384-default", p384, Options{}, crypto.SHA384},
		{"rsa-sha256", rk, Options{}, crypto.SHA256},
		{"rsa-sha384", rk, Options{Hash: crypto.SHA384}, crypto.SHA384},
		{"rsa-pss-sha256", rk, Options{PSS: true}, crypto.SHA256},
		{"rsa-pss-sha512", rk, Options{PSS: true, Hash: crypto.SHA512}, crypto.SHA512},
	}
	for i, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			leaf := cert(t, &x509.Certificate{SerialNumber: big.NewInt(int64(10 + i)), Subject: pkix.Name{CommonName: tc.name},
				NotBefore: now, NotAfter: now.Add(24 * time.Hour), KeyUsage: x509.KeyUsageDigitalSignature | x509.KeyUsageContentCommitment},
				ca, tc.key.Public(), caKey)
			h := tc.opts.Hash
			if h == 0 {
				h = DefaultHash(tc.key.Public())
			}
			if h != tc.want {
				t.Fatalf("hash %v, want %v", h, tc.want)
			}
			hh := h.New()
			hh.Write(content)
			sig, err := Sign(rand.Reader, hh.Sum(nil), tc.key, []*x509.Certificate{leaf}, tc.opts)
			if err != nil {
				t.Fatal(err)
			}
			der, err := sig.Marshal()
			if err != nil {
				t.Fatal(err)
			}
			checkSignedAttrs(t, der)
			sigF, contentF := filepath.Join(dir, tc.name+".der"), filepath.Join(dir, tc.name+".bin")
			_ = os.WriteFile(sigF, der, 0o600)
			_ = os.WriteFile(contentF, content, 0o600)
			out, err := exec.Command(openssl, "cms", "-verify", "-binary", "-inform", "DER", "-in", sigF, "-content", contentF,
				"-CAfile", caPEM, "-purpose", "any", "-out", os.DevNull).CombinedOutput()
			if err != nil || !strings.Contains(string(out), "Verification successful") {
				t.Fatalf("openssl cms -verify: %v\n%s", err, out)
			}
			// The same signature over other content must fail.
			_ = os.WriteFile(contentF, append(content, 'x'), 0o600)
			out, _ = exec.Command(openssl, "cms", "-verify", "-binary", "-inform", "DER", "-in", sigF, "-content", contentF,
				"-CAfile", caPEM, "-purpose", "any", "-out", os.DevNull).CombinedOutput()
			if strings.Contains(string(out), "Verification successful") {
				t.Fatal("openssl accepted a signature over changed content")
			}
		})
	}
}

// checkSignedAttrs asserts the signed attributes are exactly content-type,
// message-digest and signing-certificate-v2, DER-sorted.
func checkSignedAttrs(t *testing.T, der []byte) {
	t.Helper()
	var ci contentInfo
	if _, err := asn1.Unmarshal(der, &ci); err != nil {
		t.Fatal(err)
	}
	var sd looseSignedData
	if _, err := asn1.Unmarshal(ci.Content.Bytes, &sd); err != nil {
		t.Fatal(err)
	}
	if sd.Version != 1 || len(sd.SignerInfos) != 1 {
		t.Fatalf("version %d, %d signer infos", sd.Version, len(sd.SignerInfos))
	}
	var si looseSignerInfo
	if _, err := asn1.Unmarshal(sd.SignerInfos[0].FullBytes, &si); err != nil {
		t.Fatal(err)
	}
	rest := si.SignedAttrs.Bytes
	var got []string
	var prev []byte
	for len(rest) > 0 {
		var a attribute
		var raw asn1.RawValue
		r, err := asn1.Unmarshal(rest, &raw)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := asn1.Unmarshal(raw.FullBytes, &a); err != nil {
			t.Fatal(err)
		}
		if prev != nil && string(prev) > string(raw.FullBytes) {
			t.Fatal("signed attributes not DER-sorted")
		}
		prev = raw.FullBytes
		got = append(got, a.Type.String())
		rest = r
	}
	want := map[string]bool{OIDContentType.String(): true, OIDMessageDigest.String(): true, OIDSigningCertificateV2.String(): true}
	if len(got) != 3 {
		t.Fatalf("signed attributes %v", got)
	}
	for _, g := range got {
		if !want[g] {
			t.Fatalf("unexpected signed attribute %s", g)
		}
	}
}

func FuzzParse(f *testing.F) {
	f.Add([]byte{0x30, 0x80, 0x06, 0x09, 0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x07, 0x02, 0x00, 0x00})
	f.Fuzz(func(t *testing.T, b []byte) {
		_, _ = Parse(b)
	})
}
