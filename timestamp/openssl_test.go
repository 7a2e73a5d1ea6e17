package timestamp

import (
	"bytes"
	"crypto/x509"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/thiqa/thiqa/internal/testenv"
)

// opensslRun runs openssl and returns its combined output and whether it
// exited 0.
func opensslRun(t *testing.T, args ...string) (string, bool) {
	t.Helper()
	out, err := exec.Command(testenv.Tool(t, "openssl"), args...).CombinedOutput()
	return string(out), err == nil
}

func postQuery(t *testing.T, url string, body []byte) []byte {
	t.Helper()
	resp, err := http.Post(url, QueryContentType, bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var buf bytes.Buffer
	if _, err := buf.ReadFrom(resp.Body); err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != http.StatusOK || resp.Header.Get("Content-Type") != ReplyContentType {
		t.Fatalf("HTTP %d %q: %s", resp.StatusCode, resp.Header.Get("Content-Type"), buf.String())
	}
	return buf.Bytes()
}

type opensslCase struct {
	name       string
	cfg        Config
	rsa        bool
	queryArgs  []string // besides -data and -out
	untrusted  func(p *testPKI) []*x509.Certificate
	wantInText []string
	// cmsOnly: openssl ts verifies through its PKCS7 code, which knows no
	// RSASSA-PSS; such tokens are checked with openssl cms instead.
	cmsOnly bool
}

func TestOpenSSLInterop(t *testing.T) {
	caOnly := func(p *testPKI) []*x509.Certificate { return []*x509.Certificate{p.ca} }
	unitAndCA := func(p *testPKI) []*x509.Certificate { return []*x509.Certificate{p.unit, p.ca} }
	cases := []opensslCase{
		{name: "sha256-cert", queryArgs: []string{"-sha256", "-cert"}, untrusted: caOnly,
			wantInText: []string{"Policy OID: 0.4.0.2023.1.1", "Accuracy: 0x01 seconds", "Ordering: no", "Nonce: 0x"}},
		{name: "sha256-nocert", queryArgs: []string{"-sha256"}, untrusted: unitAndCA},
		{name: "sha512-cert", queryArgs: []string{"-sha512", "-cert"}, untrusted: caOnly},
		{name: "sha384-chain-included", cfg: Config{IncludeChain: true}, queryArgs: []string{"-sha384", "-cert"},
			untrusted: func(*testPKI) []*x509.Certificate { return nil }},
		{name: "qualified-tsaname-signingtime", cfg: Config{Qualified: true, IncludeTSAName: true, SigningTime: true, Accuracy: 250_000_000},
			queryArgs: []string{"-sha256", "-cert"}, untrusted: caOnly,
			wantInText: []string{"TSA: DirName:", "Thiqa Test TSA Unit 1", "Accuracy: unspecified seconds, 0xFA millis, unspecified micros", "qcStatements"}},
		{name: "policy-requested", cfg: Config{AcceptedPolicies: []string{"1.2.3.4.5"}},
			queryArgs: []string{"-sha256", "-cert", "-tspolicy", "1.2.3.4.5"}, untrusted: caOnly},
		{name: "sha3-256", queryArgs: []string{"-sha3-256", "-cert"}, untrusted: caOnly},
		{name: "rsa-pkcs1", rsa: true, queryArgs: []string{"-sha256", "-cert"}, untrusted: caOnly},
		{name: "rsa-pss", rsa: true, cfg: Config{RSAPSS: true}, queryArgs: []string{"-sha512", "-cert"}, untrusted: caOnly, cmsOnly: true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var pki *testPKI
			if tc.rsa {
				pki = newTestPKI(t, rsaKey(t))
			}
			tsa := newTestTSA(t, tc.cfg, pki)
			srv := httptest.NewServer(tsa.Handler(nil))
			defer srv.Close()

			dir := t.TempDir()
			data := filepath.Join(dir, "data.txt")
			other := filepath.Join(dir, "other.txt")
			_ = os.WriteFile(data, []byte("Thiqa: the data to time-stamp\n"), 0o600)
			_ = os.WriteFile(other, []byte("Thiqa: other data\n"), 0o600)
			q, r := filepath.Join(dir, "q.tsq"), filepath.Join(dir, "r.tsr")
			if out, ok := opensslRun(t, append([]string{"ts", "-query", "-data", data, "-out", q}, tc.queryArgs...)...); !ok {
				t.Fatalf("openssl ts -query: %s", out)
			}
			query, _ := os.ReadFile(q)
			_ = os.WriteFile(r, postQuery(t, srv.URL+"/tsa", query), 0o600)

			root := writePEM(t, filepath.Join(dir, "root.pem"), tsa.pki.root)
			verifyArgs := []string{"ts", "-verify", "-in", r, "-CAfile", root}
			if u := tc.untrusted(tsa.pki); len(u) > 0 {
				verifyArgs = append(verifyArgs, "-untrusted", writePEM(t, filepath.Join(dir, "chain.pem"), u...))
			}
			// Independent second path: the token as CMS SignedData.
			tok := filepath.Join(dir, "token.der")
			if out, ok := opensslRun(t, "ts", "-reply", "-in", r, "-token_out", "-out", tok); !ok {
				t.Fatalf("openssl ts -reply -token_out: %s", out)
			}
			// openssl cms has no -untrusted: the bundle holds root and TSA CA;
			// the path itself is checked by openssl ts -verify below.
			bundle := writePEM(t, filepath.Join(dir, "bundle.pem"), tsa.pki.root, tsa.pki.ca)
			cmsArgs := []string{"cms", "-verify", "-inform", "DER", "-in", tok, "-CAfile", bundle, "-purpose", "timestampsign",
				"-certfile", writePEM(t, filepath.Join(dir, "unit.pem"), tsa.pki.unit), "-out", filepath.Join(dir, "tstinfo.der")}
			if out, ok := opensslRun(t, cmsArgs...); !ok || !strings.Contains(out, "Verification successful") {
				t.Fatalf("openssl cms -verify: %s", out)
			}
			if tc.cmsOnly {
				return
			}
			out, ok := opensslRun(t, append(verifyArgs, "-queryfile", q)...)
			if !ok || !strings.Contains(out, "Verification: OK") {
				t.Fatalf("openssl ts -verify -queryfile: %s", out)
			}
			out, ok = opensslRun(t, append(verifyArgs, "-data", data)...)
			if !ok || !strings.Contains(out, "Verification: OK") {
				t.Fatalf("openssl ts -verify -data: %s", out)
			}
			out, ok = opensslRun(t, append(verifyArgs, "-data", other)...)
			if ok || strings.Contains(out, "Verification: OK") {
				t.Fatalf("tampered data verified: %s", out)
			}
			text, ok := opensslRun(t, "ts", "-reply", "-in", r, "-text")
			if !ok || !strings.Contains(text, "Status: Granted.") {
				t.Fatalf("openssl ts -reply -text: %s", text)
			}
			for _, w := range tc.wantInText {
				if !strings.Contains(text, w) {
					t.Errorf("reply text lacks %q:\n%s", w, text)
				}
			}
			if n := tsa.recorder.count(); n != 1 {
				t.Errorf("%d records, want 1", n)
			}
		})
	}
}
