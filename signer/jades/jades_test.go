package jades_test

import (
	"bytes"
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"errors"
	"math/big"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/thiqa/thiqa/internal/testenv"
	"github.com/thiqa/thiqa/signer/jades"
	"github.com/thiqa/thiqa/verify"
	"github.com/thiqa/thiqa/verify/report"
)

// pki is a root and a seal certificate for each key type.
type pki struct {
	root *x509.Certificate
	keys map[string]crypto.Signer
	leaf map[string]*x509.Certificate
}

func newPKI(t *testing.T) *pki {
	t.Helper()
	rootKey, _ := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	now := time.Now().Add(-time.Hour)
	rt := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "JAdES Test Root", Country: []string{"OM"}},
		NotBefore: now, NotAfter: now.Add(48 * time.Hour), IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign}
	der, err := x509.CreateCertificate(rand.Reader, rt, rt, rootKey.Public(), rootKey)
	if err != nil {
		t.Fatal(err)
	}
	p := &pki{keys: map[string]crypto.Signer{}, leaf: map[string]*x509.Certificate{}}
	p.root, _ = x509.ParseCertificate(der)
	ec256, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	ec384, _ := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	rsaKey, _ := rsa.GenerateKey(rand.Reader, 2048)
	for i, k := range map[string]crypto.Signer{"ES256": ec256, "ES384": ec384, "RSA": rsaKey} {
		_ = i
		lt := &x509.Certificate{SerialNumber: big.NewInt(int64(10 + len(p.leaf))), Subject: pkix.Name{CommonName: "Ministry of Health Seal " + i,
			Organization: []string{"Ministry of Health"}, Country: []string{"OM"}}, NotBefore: now, NotAfter: now.Add(24 * time.Hour),
			KeyUsage: x509.KeyUsageDigitalSignature | x509.KeyUsageContentCommitment}
		der, err := x509.CreateCertificate(rand.Reader, lt, p.root, k.Public(), rootKey)
		if err != nil {
			t.Fatal(err)
		}
		p.keys[i] = k
		p.leaf[i], _ = x509.ParseCertificate(der)
	}
	return p
}

const birth = `{"type":"birth-certificate","name":{"ar":"عائشة","en":"Aisha"},"born":"2026-05-14","registry":"Muscat"}`

// TestJAdESWithNodeJose: each algorithm's seal, compact or JSON, attached
// or detached, verifies in node's jose (the protected sigT understood as
// critical) over the payload with the certificate's key, and in package
// verify (TOTAL-PASSED, B-B, the seal's identity); a changed payload fails
// in both.
func TestJAdESWithNodeJose(t *testing.T) {
	p := newPKI(t)
	dir := testenv.NPMPackages(t, "jose@6.2.17")
	script := filepath.Join(dir, "verify-jws.mjs")
	if err := os.WriteFile(script, []byte(nodeScript), 0o600); err != nil {
		t.Fatal(err)
	}
	v := verify.New(verify.Options{TrustAnchors: []*x509.Certificate{p.root}, Revocation: verify.RevocationIgnored})
	cases := []struct {
		key, alg          string
		compact, detached bool
	}{
		{"ES256", "ES256", false, false}, {"ES384", "ES384", false, false}, {"RSA", "PS256", false, false},
		{"RSA", "RS256", true, false}, {"ES256", "ES256", true, true}, {"ES256", "ES256", false, true},
	}
	for _, c := range cases {
		name := c.alg
		if c.compact {
			name += "-compact"
		}
		if c.detached {
			name += "-detached"
		}
		t.Run(name, func(t *testing.T) {
			o := jades.Options{Signer: p.keys[c.key], Chain: []*x509.Certificate{p.leaf[c.key], p.root}, Compact: c.compact, Detached: c.detached}
			if c.key == "RSA" {
				o.Algorithm = c.alg
			}
			res, err := jades.Sign(context.Background(), []byte(birth), o)
			if err != nil || res.Algorithm != c.alg {
				t.Fatalf("sign: %v (%v)", err, res)
			}
			pemPath := filepath.Join(t.TempDir(), "cert.pem")
			_ = os.WriteFile(pemPath, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: p.leaf[c.key].Raw}), 0o600)
			jwsPath := filepath.Join(t.TempDir(), "sig.jws")
			_ = os.WriteFile(jwsPath, res.JWS, 0o600)
			for _, payload := range []string{birth, strings.Replace(birth, "Aisha", "Aysha", 1)} {
				payloadPath := filepath.Join(t.TempDir(), "payload.json")
				_ = os.WriteFile(payloadPath, []byte(payload), 0o600)
				cmd := exec.Command(testenv.Tool(t, "node"), script, jwsPath, pemPath, c.alg, payloadPath, boolArg(c.detached))
				cmd.Dir = dir
				out, err := cmd.CombinedOutput()
				want := payload == birth
				if ok := err == nil && strings.Contains(string(out), "VERIFIED"); ok != want {
					t.Fatalf("node jose (payload changed: %v): %v\n%s", !want, err, out)
				}
				if want && !c.detached && !strings.Contains(string(out), "Muscat") {
					t.Fatalf("node jose did not return the payload: %s", out)
				}
				var detached []byte
				jws := res.JWS
				if c.detached {
					detached = []byte(payload)
				} else if !want {
					jws = tamper(t, res.JWS, c.compact, payload)
				}
				rep, err := v.VerifyJAdES(context.Background(), jws, detached)
				if err != nil {
					t.Fatal(err)
				}
				s := rep.Signatures[0]
				if want && (rep.Indication != report.TotalPassed || s.Level != "B-B" || s.Format != "JAdES" || s.Signer == nil ||
					s.Signer.Organization != "Ministry of Health" || s.SignatureAlgorithm != c.alg || s.ClaimedSigningTime == nil) {
					js, _ := json.MarshalIndent(rep, "", " ")
					t.Fatalf("verify: %s", js)
				}
				if !want && (rep.Indication != report.TotalFailed || s.SubIndication != report.SigCryptoFailure) {
					t.Fatalf("verify of a changed payload: %s/%s", rep.Indication, s.SubIndication)
				}
			}
		})
	}
}

// tamper replaces the payload of a JWS by payload, keeping the signature.
func tamper(t *testing.T, jws []byte, compact bool, payload string) []byte {
	t.Helper()
	enc := b64url(payload)
	if compact {
		parts := bytes.Split(jws, []byte("."))
		parts[1] = []byte(enc)
		return bytes.Join(parts, []byte("."))
	}
	var m map[string]any
	_ = json.Unmarshal(jws, &m)
	m["payload"] = enc
	b, _ := json.Marshal(m)
	return b
}

func boolArg(b bool) string {
	if b {
		return "detached"
	}
	return "attached"
}

// TestJAdESRefusals: what cannot be a JAdES baseline signature is refused.
func TestJAdESRefusals(t *testing.T) {
	p := newPKI(t)
	chain := []*x509.Certificate{p.leaf["ES256"], p.root}
	for name, o := range map[string]jades.Options{
		"not JSON":         {Signer: p.keys["ES256"], Chain: chain},
		"compact B-T":      {Signer: p.keys["ES256"], Chain: chain, Level: jades.LevelBT, Compact: true},
		"B-T without TSA":  {Signer: p.keys["ES256"], Chain: chain, Level: jades.LevelBT},
		"RS256 on EC key":  {Signer: p.keys["ES256"], Chain: chain, Algorithm: "RS256"},
		"B-LT":             {Signer: p.keys["ES256"], Chain: chain, Level: "B-LT"},
		"no certificate":   {Signer: p.keys["ES256"]},
		"RSA with ES256":   {Signer: p.keys["RSA"], Chain: []*x509.Certificate{p.leaf["RSA"]}, Algorithm: "ES256"},
		"no signer at all": {},
	} {
		payload := []byte(birth)
		if name == "not JSON" {
			payload = []byte("{not json")
		}
		if _, err := jades.Sign(context.Background(), payload, o); !errors.Is(err, jades.ErrOptions) {
			t.Errorf("%s: %v, want ErrOptions", name, err)
		}
	}
}

// nodeScript verifies a JWS (compact or flattened JSON) with node's jose:
// node verify-jws.mjs JWS CERT.pem ALG PAYLOAD attached|detached.
const nodeScript = `
import * as jose from 'jose';
import { readFileSync } from 'node:fs';
const [jwsPath, certPath, alg, payloadPath, mode] = process.argv.slice(2);
const raw = readFileSync(jwsPath, 'utf8').trim();
const key = await jose.importX509(readFileSync(certPath, 'utf8'), alg);
const payload = readFileSync(payloadPath);
const opts = { algorithms: [alg], crit: { sigT: true } };
try {
  let out;
  if (raw.startsWith('{')) {
    const jws = JSON.parse(raw);
    if (mode === 'detached') jws.payload = jose.base64url.encode(payload);
    out = await jose.flattenedVerify(jws, key, opts);
  } else {
    let compact = raw;
    if (mode === 'detached') { const p = raw.split('.'); p[1] = jose.base64url.encode(payload); compact = p.join('.'); }
    out = await jose.compactVerify(compact, key, opts);
  }
  if (mode !== 'detached' && Buffer.compare(Buffer.from(out.payload), payload) !== 0) {
    console.log('payload differs'); process.exit(1);
  }
  console.log('VERIFIED', out.protectedHeader.alg, out.protectedHeader.sigT, Buffer.from(out.payload).toString());
} catch (e) { console.log('FAILED', e.code || e.message); process.exit(1); }
`

func b64url(s string) string { return base64.RawURLEncoding.EncodeToString([]byte(s)) }
