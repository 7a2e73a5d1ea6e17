package signer

import (
	"bytes"
	"crypto/sha256"
	"encoding/asn1"
	"encoding/hex"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/thiqa/thiqa/internal/testenv"
)

// extracted is one signature found in a signed PDF by scanning for
// /ByteRange, independently of the package's own reader.
type extracted struct {
	byteRange [4]int64
	signed    []byte // the bytes the ByteRange covers
	cms       []byte // /Contents without padding
	docTS     bool
}

var byteRangeRE = regexp.MustCompile(`/ByteRange\s*\[\s*(\d+)\s+(\d+)\s+(\d+)\s+(\d+)\s*\]`)

func extractSignatures(t *testing.T, pdf []byte) []extracted {
	t.Helper()
	var out []extracted
	for _, m := range byteRangeRE.FindAllSubmatchIndex(pdf, -1) {
		var br [4]int64
		for i := 0; i < 4; i++ {
			v, _ := strconv.ParseInt(string(pdf[m[2+2*i]:m[3+2*i]]), 10, 64)
			br[i] = v
		}
		if br[1] <= 0 || br[2]+br[3] > int64(len(pdf)) || pdf[br[1]] != '<' || pdf[br[2]-1] != '>' {
			t.Fatalf("bad byte range %v", br)
		}
		raw, err := hex.DecodeString(string(pdf[br[1]+1 : br[2]-1]))
		if err != nil {
			t.Fatalf("contents: %v", err)
		}
		var rv asn1.RawValue
		if _, err := asn1.Unmarshal(raw, &rv); err != nil {
			t.Fatalf("contents is not DER: %v", err)
		}
		signed := append(append([]byte(nil), pdf[:br[1]]...), pdf[br[2]:br[2]+br[3]]...)
		// The dictionary holding this ByteRange: look back for /Type.
		start := bytes.LastIndex(pdf[:m[0]], []byte(" obj"))
		dict := pdf[start:br[1]]
		out = append(out, extracted{byteRange: br, signed: signed, cms: rv.FullBytes, docTS: bytes.Contains(dict, []byte("/DocTimeStamp"))})
	}
	return out
}

// pdfsig runs poppler's pdfsig with an NSS database trusting root.
func pdfsig(t *testing.T, p *testPKI, pdf []byte) string {
	t.Helper()
	dir := t.TempDir()
	certutil := testenv.Tool(t, "certutil")
	nss := "sql:" + filepath.Join(dir, "nss")
	if err := os.Mkdir(filepath.Join(dir, "nss"), 0o700); err != nil {
		t.Fatal(err)
	}
	run(t, certutil, "-N", "-d", nss, "--empty-password")
	rootPEM := writePEM(t, dir, "root.pem", p.root)
	run(t, certutil, "-A", "-n", "root", "-t", "CT,C,C", "-i", rootPEM, "-d", nss)
	f := filepath.Join(dir, "doc.pdf")
	if err := os.WriteFile(f, pdf, 0o600); err != nil {
		t.Fatal(err)
	}
	// pdfsig exits 2 for a file without signatures: read its text.
	out, _ := exec.Command(testenv.Tool(t, "pdfsig"), "-nssdir", nss, f).CombinedOutput()
	if !strings.Contains(string(out), "Digital Signature Info") && !strings.Contains(string(out), "does not contain any signatures") {
		t.Fatalf("pdfsig: %s", out)
	}
	return string(out)
}

func run(t *testing.T, name string, args ...string) string {
	t.Helper()
	out, err := exec.Command(name, args...).CombinedOutput()
	if err != nil {
		t.Fatalf("%s %s: %v\n%s", filepath.Base(name), strings.Join(args, " "), err, out)
	}
	return string(out)
}

// assertPdfsig checks every non-timestamp signature is valid and trusted.
func assertPdfsig(t *testing.T, p *testPKI, pdf []byte, wantSigs int) {
	t.Helper()
	out := pdfsig(t, p, pdf)
	t.Logf("pdfsig:\n%s", out)
	if got := strings.Count(out, "Signature is Valid."); got < wantSigs {
		t.Fatalf("pdfsig: %d valid signatures, want %d:\n%s", got, wantSigs, out)
	}
	if got := strings.Count(out, "Certificate is Trusted."); got < wantSigs {
		t.Fatalf("pdfsig: %d trusted certificates, want %d:\n%s", got, wantSigs, out)
	}
	if strings.Contains(out, "Signature is Invalid") || strings.Contains(out, "Digest Mismatch") {
		t.Fatalf("pdfsig reports an invalid signature:\n%s", out)
	}
}

// assertOpenSSL verifies every extracted CMS with openssl cms, and every
// time-stamp token (signature and document time-stamps) with openssl ts.
func assertOpenSSL(t *testing.T, p *testPKI, pdf []byte, wantTS bool) {
	t.Helper()
	openssl := testenv.Tool(t, "openssl")
	dir := t.TempDir()
	root := writePEM(t, dir, "root.pem", p.root)
	untrusted := writePEM(t, dir, "ca.pem", p.ca)
	sigs := extractSignatures(t, pdf)
	if len(sigs) == 0 {
		t.Fatal("no signature found")
	}
	for i, s := range sigs {
		sigF := filepath.Join(dir, "sig"+strconv.Itoa(i)+".der")
		content := filepath.Join(dir, "content"+strconv.Itoa(i))
		if err := os.WriteFile(sigF, s.cms, 0o600); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(content, s.signed, 0o600); err != nil {
			t.Fatal(err)
		}
		if s.docTS {
			sum := sha256.Sum256(s.signed)
			out := run(t, openssl, "ts", "-verify", "-token_in", "-in", sigF, "-digest", hex.EncodeToString(sum[:]), "-CAfile", root, "-untrusted", untrusted)
			if !strings.Contains(out, "Verification: OK") {
				t.Fatalf("openssl ts -verify (document time-stamp): %s", out)
			}
			continue
		}
		out := run(t, openssl, "cms", "-verify", "-binary", "-inform", "DER", "-in", sigF, "-content", content,
			"-CAfile", root, "-purpose", "any", "-out", os.DevNull)
		if !strings.Contains(out, "Verification successful") {
			t.Fatalf("openssl cms -verify: %s", out)
		}
		if wantTS {
			tok, imprint := signatureTimestamp(t, s.cms)
			tokF := filepath.Join(dir, "tok"+strconv.Itoa(i)+".der")
			if err := os.WriteFile(tokF, tok, 0o600); err != nil {
				t.Fatal(err)
			}
			out := run(t, openssl, "ts", "-verify", "-token_in", "-in", tokF, "-digest", hex.EncodeToString(imprint), "-CAfile", root, "-untrusted", untrusted)
			if !strings.Contains(out, "Verification: OK") {
				t.Fatalf("openssl ts -verify (signature time-stamp): %s", out)
			}
		}
	}
}

// signatureTimestamp digs the signature-time-stamp token and the SHA-256 of
// the signature value out of a CMS, with encoding/asn1 only.
func signatureTimestamp(t *testing.T, cms []byte) (token, imprint []byte) {
	t.Helper()
	var ci struct {
		OID     asn1.ObjectIdentifier
		Content asn1.RawValue `asn1:"explicit,tag:0"`
	}
	if _, err := asn1.Unmarshal(cms, &ci); err != nil {
		t.Fatal(err)
	}
	var sd struct {
		V       int
		Digests asn1.RawValue
		Encap   asn1.RawValue
		Certs   asn1.RawValue   `asn1:"optional,tag:0"`
		Infos   []asn1.RawValue `asn1:"set"`
	}
	if _, err := asn1.Unmarshal(ci.Content.Bytes, &sd); err != nil {
		t.Fatal(err)
	}
	var si struct {
		V        int
		SID      asn1.RawValue
		Dig      asn1.RawValue
		Signed   asn1.RawValue `asn1:"optional,tag:0"`
		SigAlg   asn1.RawValue
		Sig      []byte
		Unsigned asn1.RawValue `asn1:"optional,tag:1"`
	}
	if _, err := asn1.Unmarshal(sd.Infos[0].FullBytes, &si); err != nil {
		t.Fatal(err)
	}
	var attr struct {
		OID  asn1.ObjectIdentifier
		Vals asn1.RawValue
	}
	if _, err := asn1.Unmarshal(si.Unsigned.Bytes, &attr); err != nil {
		t.Fatalf("no unsigned attribute: %v", err)
	}
	if !attr.OID.Equal(asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 9, 16, 2, 14}) {
		t.Fatalf("unsigned attribute %v", attr.OID)
	}
	sum := sha256.Sum256(si.Sig)
	return attr.Vals.Bytes, sum[:]
}

// qpdfCheck runs qpdf --check and fails on errors or warnings.
func qpdfCheck(t *testing.T, pdf []byte) {
	t.Helper()
	f := filepath.Join(t.TempDir(), "doc.pdf")
	if err := os.WriteFile(f, pdf, 0o600); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command(testenv.Tool(t, "qpdf"), "--check", f).CombinedOutput()
	if err != nil || !strings.Contains(string(out), "No syntax or stream encoding errors found") || strings.Contains(string(out), "WARNING") {
		t.Fatalf("qpdf --check: %v\n%s", err, out)
	}
}

// toXrefStream converts pdf with qpdf to object streams + xref stream.
func toXrefStream(t *testing.T, pdf []byte) []byte {
	t.Helper()
	dir := t.TempDir()
	in, out := filepath.Join(dir, "in.pdf"), filepath.Join(dir, "out.pdf")
	if err := os.WriteFile(in, pdf, 0o600); err != nil {
		t.Fatal(err)
	}
	run(t, testenv.Tool(t, "qpdf"), "--object-streams=generate", in, out)
	b, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Contains(b, []byte("/ObjStm")) || !bytes.Contains(b, []byte("/XRef")) {
		t.Fatal("qpdf did not produce object streams")
	}
	return b
}
