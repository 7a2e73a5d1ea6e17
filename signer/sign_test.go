package signer

import (
	"bytes"
	"context"
	"crypto"
	"crypto/sha1"
	"crypto/sha256"
	"encoding/hex"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/thiqa/thiqa/internal/testenv"
	"github.com/thiqa/thiqa/signer/pdfdoc"
)

func signOpts(p *testPKI, rsaKey bool, level Level) Options {
	key, chain := p.chain(rsaKey)
	return Options{Level: level, Signer: key, Chain: chain, Reason: "Approval", Location: "Muscat", Validation: p.validation()}
}

func TestSignBB(t *testing.T) {
	p := getPKI(t)
	for _, tc := range []struct {
		name   string
		rsa    bool
		stream bool
	}{{"ecdsa", false, false}, {"rsa", true, false}, {"ecdsa-xrefstream", false, true}} {
		t.Run(tc.name, func(t *testing.T) {
			in := testPDF(2, 0)
			if tc.stream {
				in = toXrefStream(t, in)
			}
			var buf bytes.Buffer
			res, err := Sign(context.Background(), bytes.NewReader(in), int64(len(in)), &buf, signOpts(p, tc.rsa, LevelBB))
			if err != nil {
				t.Fatal(err)
			}
			out := buf.Bytes()
			sum := sha256.Sum256(extractSignatures(t, out)[0].signed)
			if res.Size != int64(len(out)) || !bytes.Equal(res.DocumentDigest, sum[:]) || res.Level != LevelBB || len(res.CMS) == 0 {
				t.Fatalf("result %+v does not describe the output", res)
			}
			if !bytes.Equal(out[:len(in)], in) {
				t.Fatal("original bytes changed")
			}
			qpdfCheck(t, out)
			assertOpenSSL(t, p, out, false)
			assertPdfsig(t, p, out, 1)
		})
	}
}

func TestSignLevels(t *testing.T) {
	p := getPKI(t)
	for _, level := range []Level{LevelBT, LevelBLT, LevelBLTA} {
		for _, rsaKey := range []bool{false, true} {
			name := level.String() + map[bool]string{false: "/ecdsa", true: "/rsa"}[rsaKey]
			t.Run(name, func(t *testing.T) {
				ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
				defer cancel()
				in := testPDF(1, 0)
				if rsaKey {
					in = toXrefStream(t, in)
				}
				out, err := SignBytes(ctx, in, signOpts(p, rsaKey, level))
				if err != nil {
					t.Fatal(err)
				}
				qpdfCheck(t, out)
				assertOpenSSL(t, p, out, true)
				assertPdfsig(t, p, out, 1)
				if level >= LevelBLT {
					if !bytes.Contains(out, []byte("/DSS")) {
						t.Fatal("no /DSS")
					}
					// The VRI key is the SHA-1 of the whole /Contents string.
					br := extractSignatures(t, out)[0].byteRange
					raw, err := hex.DecodeString(string(out[br[1]+1 : br[2]-1]))
					if err != nil {
						t.Fatal(err)
					}
					sum := sha1.Sum(raw)
					if !bytes.Contains(out, []byte("/"+strings.ToUpper(hex.EncodeToString(sum[:])))) {
						t.Fatal("no /VRI entry for the signature")
					}
				}
				if level == LevelBLTA && !bytes.Contains(out, []byte("/ETSI.RFC3161")) {
					t.Fatal("no document time-stamp")
				}
			})
		}
	}
}

// TestDSSContents reads the DSS of a B-LT signature back and has openssl
// check its OCSP response for the signer's certificate and its CRLs.
func TestDSSContents(t *testing.T) {
	p := getPKI(t)
	out, err := SignBytes(context.Background(), testPDF(1, 0), signOpts(p, false, LevelBLT))
	if err != nil {
		t.Fatal(err)
	}
	rd, err := pdfdoc.Open(bytes.NewReader(out), int64(len(out)))
	if err != nil {
		t.Fatal(err)
	}
	cat, err := rd.Catalog()
	if err != nil {
		t.Fatal(err)
	}
	dss, err := rd.ResolveDict(cat["DSS"])
	if err != nil || dss == nil {
		t.Fatalf("DSS: %v", err)
	}
	streams := func(key pdfdoc.Name) [][]byte {
		arr, _ := dss[key].(pdfdoc.Array)
		var res [][]byte
		for _, r := range arr {
			o, err := rd.Resolve(r)
			s, ok := o.(*pdfdoc.Stream)
			if err != nil || !ok {
				t.Fatalf("%s entry: %v", key, err)
			}
			b, err := rd.StreamData(s, 1<<20)
			if err != nil {
				t.Fatal(err)
			}
			res = append(res, b)
		}
		return res
	}
	certs, ocsps, crls := streams("Certs"), streams("OCSPs"), streams("CRLs")
	if len(certs) < 4 || len(ocsps) < 2 || len(crls) < 1 {
		t.Fatalf("DSS has %d certs, %d OCSP responses, %d CRLs", len(certs), len(ocsps), len(crls))
	}
	dir := t.TempDir()
	root := writePEM(t, dir, "root.pem", p.root)
	ca := writePEM(t, dir, "ca.pem", p.ca)
	leaf := writePEM(t, dir, "leaf.pem", p.ecLeaf)
	openssl := testenv.Tool(t, "openssl")
	good := false
	for i, r := range ocsps {
		f := filepath.Join(dir, "ocsp"+itoa(i)+".der")
		if err := os.WriteFile(f, r, 0o600); err != nil {
			t.Fatal(err)
		}
		// Responses for the other certificates make openssl exit 1: read the text.
		res, _ := exec.Command(openssl, "ocsp", "-respin", f, "-CAfile", root, "-issuer", ca, "-cert", leaf, "-verify_other", ca).CombinedOutput()
		if strings.Contains(string(res), leaf+": good") && strings.Contains(string(res), "Response verify OK") {
			good = true
		}
	}
	if !good {
		t.Fatal("no OCSP response in the DSS says the signer's certificate is good")
	}
	for i, c := range crls {
		f := filepath.Join(dir, "crl"+itoa(i)+".der")
		if err := os.WriteFile(f, c, 0o600); err != nil {
			t.Fatal(err)
		}
		res := run(t, openssl, "crl", "-inform", "DER", "-in", f, "-CAfile", root, "-noout")
		if !strings.Contains(res, "verify OK") {
			t.Fatalf("openssl crl: %s", res)
		}
	}
}

// TestSignAlgorithms signs with RSA-PSS and SHA-384/512 end to end.
func TestSignAlgorithms(t *testing.T) {
	p := getPKI(t)
	for _, tc := range []struct {
		name string
		rsa  bool
		pss  bool
		hash crypto.Hash
	}{{"rsa-pss-sha256", true, true, crypto.SHA256}, {"rsa-sha512", true, false, crypto.SHA512}, {"ecdsa-sha384", false, false, crypto.SHA384}} {
		t.Run(tc.name, func(t *testing.T) {
			o := signOpts(p, tc.rsa, LevelBT)
			o.PSS, o.Hash = tc.pss, tc.hash
			out, err := SignBytes(context.Background(), testPDF(1, 0), o)
			if err != nil {
				t.Fatal(err)
			}
			assertOpenSSL(t, p, out, true)
			assertPdfsig(t, p, out, 1)
		})
	}
}
