package verify

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/json"
	"math/big"
	"testing"
	"time"

	"github.com/thiqa/thiqa/verify/report"
)

// A JAdES signature judged TOTAL-FAILED reports no level, as a PDF
// signature does (applyLevels): a level is what a signature that may be
// relied on reaches, and a failed one reaches none. Here the signature
// value verifies but its sigT is not a time (FORMAT_FAILURE).
func TestJAdESTotalFailedHasNoLevel(t *testing.T) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	der, err := x509.CreateCertificate(rand.Reader, &x509.Certificate{
		SerialNumber: big.NewInt(7), Subject: pkix.Name{CommonName: "JAdES level test", Country: []string{"OM"}},
		NotBefore: now.Add(-time.Hour), NotAfter: now.Add(time.Hour), KeyUsage: x509.KeyUsageDigitalSignature,
	}, &x509.Certificate{SerialNumber: big.NewInt(7), Subject: pkix.Name{CommonName: "JAdES level test", Country: []string{"OM"}}}, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	x5t := sha256.Sum256(der)
	jws := func(sigT string) []byte {
		ph, _ := json.Marshal(map[string]any{"alg": "ES256", "x5c": []string{base64.StdEncoding.EncodeToString(der)},
			"x5t#S256": base64.RawURLEncoding.EncodeToString(x5t[:]), "sigT": sigT, "crit": []string{"sigT"}})
		protected := base64.RawURLEncoding.EncodeToString(ph)
		payload := base64.RawURLEncoding.EncodeToString([]byte(`{"a":1}`))
		h := sha256.Sum256([]byte(protected + "." + payload))
		r, s, err := ecdsa.Sign(rand.Reader, key, h[:])
		if err != nil {
			t.Fatal(err)
		}
		sig := make([]byte, 64)
		r.FillBytes(sig[:32])
		s.FillBytes(sig[32:])
		b, _ := json.Marshal(map[string]string{"protected": protected, "payload": payload, "signature": base64.RawURLEncoding.EncodeToString(sig)})
		return b
	}
	v := New(Options{})
	// The same signature with a good sigT keeps its level: the check is on the verdict.
	rep, err := v.VerifyJAdES(t.Context(), jws(now.UTC().Format(time.RFC3339)), nil)
	if err != nil {
		t.Fatal(err)
	}
	if s := rep.Signatures[0]; s.Indication == report.TotalFailed || !s.SignatureIntact || s.Level != "B-B" {
		t.Fatalf("a good JAdES signature (no trust anchor): %s, intact %v, level %q; want not TOTAL-FAILED, intact, B-B", s.Indication, s.SignatureIntact, s.Level)
	}
	rep, err = v.VerifyJAdES(t.Context(), jws("yesterday"), nil)
	if err != nil {
		t.Fatal(err)
	}
	s := rep.Signatures[0]
	if s.Indication != report.TotalFailed || !s.SignatureIntact {
		t.Fatalf("sigT not a time: %s, intact %v; want TOTAL-FAILED with an intact signature value", s.Indication, s.SignatureIntact)
	}
	if s.Level != "" {
		t.Fatalf("a TOTAL-FAILED JAdES signature reports level %q; want none, as a PDF signature", s.Level)
	}
	if js, _ := json.Marshal(rep); json.Valid(js) && containsKey(t, js, "level") {
		t.Fatalf("the report carries a level: %s", js)
	}
}

// containsKey reports whether the first signature of a JSON report has key.
func containsKey(t *testing.T, js []byte, key string) bool {
	t.Helper()
	var m struct {
		Signatures []map[string]json.RawMessage `json:"signatures"`
	}
	if err := json.Unmarshal(js, &m); err != nil || len(m.Signatures) == 0 {
		t.Fatalf("report %s: %v", js, err)
	}
	_, ok := m.Signatures[0][key]
	return ok
}
