package revocation_test

import (
	"bytes"
	"crypto"
	"crypto/x509"
	"fmt"
	"io"
	"math/big"
	"net/http"
	"strings"
	"testing"
	"time"

	xocsp "golang.org/x/crypto/ocsp"

	"github.com/thiqa/thiqa/store/storetest"
)

// TestOCSPGoodRightAfterIssuance: the responder answers "good" for a
// certificate as soon as its issuance returns (RFC 6960, CA/B BR 4.9.10:
// no window of "unknown" for an issued certificate), whichever CertID
// hash, with or without a nonce, although the pre-signer has not run since
// (a cache miss asks the store); the answer is dated no later than it was
// given; and a serial never issued stays "unknown". On SQLite and
// PostgreSQL, through the server as `thiqa serve` wires it.
func TestOCSPGoodRightAfterIssuance(t *testing.T) {
	for _, d := range storetest.Dialects() {
		t.Run(d.Name, func(t *testing.T) {
			f := newFixture(t, d)
			f.start(t, 48*time.Hour)
			issuer := f.pki.CAs["citizen"]
			ask := func(serial *big.Int, h crypto.Hash) *xocsp.Response {
				t.Helper()
				der, err := xocsp.CreateRequest(&x509.Certificate{SerialNumber: serial}, issuer, &xocsp.RequestOptions{Hash: h})
				if err != nil {
					t.Fatal(err)
				}
				resp, err := http.Post(f.base+"/ocsp", "application/ocsp-request", bytes.NewReader(der))
				if err != nil {
					t.Fatal(err)
				}
				defer resp.Body.Close()
				body, _ := io.ReadAll(resp.Body)
				r, err := xocsp.ParseResponse(body, issuer)
				if err != nil {
					t.Fatalf("serial %x, %v: %v", serial, h, err)
				}
				if r.ThisUpdate.After(time.Now()) {
					t.Fatalf("serial %x: thisUpdate %s is in the future", serial, r.ThisUpdate)
				}
				return r
			}
			for i := range 10 {
				name := fmt.Sprintf("fresh-%d.pem", i)
				serial := readSerial(t, f.issue(t, fmt.Sprintf("1234567%d", i), name))
				for _, h := range []crypto.Hash{crypto.SHA1, crypto.SHA256, crypto.SHA384} {
					if r := ask(serial, h); r.Status != xocsp.Good {
						t.Fatalf("certificate %x just issued, %v: status %d, want good", serial, h, r.Status)
					}
				}
				// With a nonce (signed now, never from the cache), judged by openssl.
				if out := f.ocspCheck(t, true, "-cert", f.path(name)); !strings.Contains(out, name+": good") {
					t.Fatalf("certificate %x just issued, with a nonce:\n%s", serial, out)
				}
			}
			never := new(big.Int).Lsh(big.NewInt(0x5eed), 100)
			if r := ask(never, crypto.SHA1); r.Status != xocsp.Unknown {
				t.Fatalf("serial never issued: status %d, want unknown", r.Status)
			}
			if out := f.ocspCheck(t, true, "-serial", "0x"+never.Text(16)); !strings.Contains(out, ": unknown") {
				t.Fatalf("serial never issued, with a nonce:\n%s", out)
			}
		})
	}
}

// readSerial parses a lower-case hex serial.
func readSerial(t *testing.T, hex string) *big.Int {
	t.Helper()
	n, ok := new(big.Int).SetString(hex, 16)
	if !ok {
		t.Fatalf("serial %q", hex)
	}
	return n
}
