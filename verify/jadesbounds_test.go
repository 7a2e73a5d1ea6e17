package verify

import (
	"context"
	"crypto/ecdsa"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"
)

// signedJWS is a JAdES (flattened JSON) signed by p's leaf over {"a":1}
// with header as its unprotected header.
func signedJWS(t *testing.T, p *testPKI, header string) []byte {
	t.Helper()
	b64 := base64.RawURLEncoding.EncodeToString
	digest := sha256.Sum256(p.leaf.Raw)
	ph, err := json.Marshal(map[string]any{"alg": "ES256", "x5c": []string{base64.StdEncoding.EncodeToString(p.leaf.Raw)},
		"x5t#S256": b64(digest[:]), "sigT": time.Now().UTC().Format(time.RFC3339), "crit": []string{"sigT"}})
	if err != nil {
		t.Fatal(err)
	}
	protected, payload := b64(ph), b64([]byte(`{"a":1}`))
	h := sha256.Sum256([]byte(protected + "." + payload))
	r, s, err := ecdsa.Sign(rand.Reader, p.leafKey, h[:])
	if err != nil {
		t.Fatal(err)
	}
	size := (p.leafKey.Curve.Params().BitSize + 7) / 8
	sig := make([]byte, 2*size)
	r.FillBytes(sig[:size])
	s.FillBytes(sig[size:])
	return fmt.Appendf(nil, `{"payload":%q,"protected":%q,"header":%s,"signature":%q}`, payload, protected, header, b64(sig))
}

// TestJAdESUnsignedHeaderBounds: anyone can post a JWS signed with a key
// of their own; its unsigned header must not buy a report of hundreds of
// megabytes (a warning per etsiU element) nor a validation per token.
func TestJAdESUnsignedHeaderBounds(t *testing.T) {
	p := newTestPKI(t)
	v := New(Options{TrustAnchors: []*x509.Certificate{p.root}, Revocation: RevocationIgnored})

	many := `{"etsiU":[` + strings.Repeat("1,", 10*maxEtsiU) + `1]}`
	rep, err := v.VerifyJAdES(context.Background(), signedJWS(t, p, many), nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(rep.Signatures) != 1 || !rep.Signatures[0].SignatureIntact {
		t.Fatalf("want the one intact signature: %s", summary(rep))
	}
	if n := len(rep.Signatures[0].Warnings); n > maxEtsiU+1 {
		t.Fatalf("%d warnings for %d etsiU elements: want at most %d", n, 10*maxEtsiU+1, maxEtsiU+1)
	}
	if !strings.Contains(strings.Join(rep.Signatures[0].Warnings, "\n"), fmt.Sprintf("only the first %d", maxEtsiU)) {
		t.Fatalf("the report should say that the rest was not read: %q", rep.Signatures[0].Warnings[:3])
	}

	tokens := `{"etsiU":[{"sigTst":{"tstTokens":[` + strings.Repeat(`{"val":"MAA="},`, 4*maxSigTimestamps) + `{"val":"MAA="}]}}]}`
	rep, err = v.VerifyJAdES(context.Background(), signedJWS(t, p, tokens), nil)
	if err != nil {
		t.Fatal(err)
	}
	if n := len(rep.Signatures[0].Timestamps); n > maxSigTimestamps {
		t.Fatalf("%d signature time-stamps judged: want at most %d", n, maxSigTimestamps)
	}
}
