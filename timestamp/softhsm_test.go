package timestamp

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/thiqa/thiqa/hsm"
	"github.com/thiqa/thiqa/internal/testenv"
)

// softHSMUnit creates a SoftHSM token with a P-256 tsa-unit key and returns
// the token and the test hierarchy around that key.
func softHSMUnit(t testing.TB) (*hsm.Token, *testPKI) {
	t.Helper()
	module := testenv.PKCS11Module(t)
	label := testenv.UniqueLabel("tsa")
	if err := hsm.InitToken(module, label, "so-pin-1234", "user-pin-1234"); err != nil {
		t.Fatalf("InitToken: %v", err)
	}
	tok, err := hsm.Open(context.Background(), hsm.Config{ModulePath: module, TokenLabel: label, PIN: "user-pin-1234"})
	if err != nil {
		t.Fatalf("hsm.Open: %v", err)
	}
	t.Cleanup(func() { _ = tok.Close() })
	key, err := tok.GenerateKey(context.Background(), "tsa-unit", hsm.ECP256)
	if err != nil {
		t.Fatalf("GenerateKey: %v", err)
	}
	return tok, newTestPKI(t, key)
}

// TestSoftHSMUnitKey issues a token signed on SoftHSM and has openssl verify it.
func TestSoftHSMUnitKey(t *testing.T) {
	_, pki := softHSMUnit(t)
	tsa := newTestTSA(t, Config{}, pki)
	dir := t.TempDir()
	data := filepath.Join(dir, "data")
	_ = os.WriteFile(data, []byte("signed on the token"), 0o600)
	q := filepath.Join(dir, "q.tsq")
	if out, ok := opensslRun(t, "ts", "-query", "-data", data, "-sha256", "-cert", "-out", q); !ok {
		t.Fatal(out)
	}
	body, _ := os.ReadFile(q)
	raw, st := tsa.Respond(t.Context(), body, "")
	if st.Status != 0 {
		t.Fatal(st)
	}
	r := tempFile(t, "r.tsr", raw)
	out, ok := opensslRun(t, "ts", "-verify", "-queryfile", q, "-in", r,
		"-CAfile", writePEM(t, filepath.Join(dir, "root.pem"), pki.root),
		"-untrusted", writePEM(t, filepath.Join(dir, "ca.pem"), pki.ca))
	if !ok || !strings.Contains(out, "Verification: OK") {
		t.Fatalf("openssl ts -verify: %s", out)
	}
}

// BenchmarkIssueTokenSoftHSM issues tokens with the P-256 key on SoftHSM
// and reports the rate as a ratio to the raw PKCS#11 sign rate measured in
// the same run.
func BenchmarkIssueTokenSoftHSM(b *testing.B) {
	tok, pki := softHSMUnit(b)
	raw, err := hsm.RawSignRate(context.Background(), tok, "tsa-unit", 2, time.Second)
	if err != nil {
		b.Fatal(err)
	}
	tsa := newTestTSA(b, Config{}, pki)
	req := opensslLikeQuery(b)
	b.SetParallelism(2)
	b.ResetTimer()
	start := time.Now()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if _, st := tsa.Respond(context.Background(), req, ""); st.Status != 0 {
				b.Errorf("status %v", st)
			}
		}
	})
	rate := float64(b.N) / time.Since(start).Seconds()
	b.ReportMetric(rate, "tokens/s")
	b.ReportMetric(raw, "raw-signs/s")
	b.ReportMetric(rate/raw, "ratio")
}
