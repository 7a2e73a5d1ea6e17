package est_test

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/thiqa/thiqa/enrol"
	"github.com/thiqa/thiqa/internal/ratelimit"
	"github.com/thiqa/thiqa/store/storetest"
)

// TestESTRefusalsBoundedOverall on SQLite and PostgreSQL: the budget per
// address (a /64 for IPv6) let anyone holding a /48 write a record for
// each of 65,536 keys' bursts. 2,000 addresses, each sending one request
// over plain HTTP and one with a wrong secret, record at most the
// server's overall budget (ratelimit.OverallBurst at once, OverallRate a
// second while the test runs); every one is still answered, and the next
// recorded refusal says how many went unrecorded.
func TestESTRefusalsBoundedOverall(t *testing.T) {
	for _, d := range storetest.Dialects() {
		t.Run(d.Name, func(t *testing.T) {
			db, _, mux := newESTServer(t, d, nil)
			k, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
			csr, _ := x509.CreateCertificateRequest(rand.Reader, &x509.CertificateRequest{Subject: pkix.Name{CommonName: "x"}}, k)
			body := base64.StdEncoding.EncodeToString(csr)
			post := func(remote string, tls bool) int {
				t.Helper()
				scheme := "http"
				if tls {
					scheme = "https"
				}
				req := httptest.NewRequest(http.MethodPost, scheme+"://est.thiqa.test/.well-known/est/simpleenroll", strings.NewReader(body))
				req.Header.Set("Content-Type", "application/pkcs10")
				req.SetBasicAuth("AAAAAAAAAAAAAAAA", "wrong-secret")
				req.RemoteAddr = remote
				w := httptest.NewRecorder()
				mux.ServeHTTP(w, req)
				return w.Code
			}
			refused := func() int { return storetest.AuditCount(t, db, enrol.ActionRefused, "refused") }
			before, start := refused(), time.Now()
			const addrs = 2000
			for i := range addrs {
				remote := fmt.Sprintf("[2001:db8:0:%x::1]:4000", i)
				if st := post(remote, false); st != http.StatusForbidden {
					t.Fatalf("%s over plain HTTP: %d, want 403", remote, st)
				}
				if st := post(remote, true); st != http.StatusUnauthorized {
					t.Fatalf("%s with a wrong secret: %d, want 401", remote, st)
				}
			}
			limit := ratelimit.OverallBurst + int(ratelimit.OverallRate*time.Since(start).Seconds()) + 1
			if n := refused() - before; n > limit {
				t.Fatalf("%d records for %d refusals from %d addresses, want at most %d", n, 2*addrs, addrs, limit)
			}
			time.Sleep(time.Second / ratelimit.OverallRate * 2)
			if st := post("[2001:db8:1::1]:4000", false); st != http.StatusForbidden {
				t.Fatalf("after a refill: %d", st)
			}
			// Each refusal is either recorded or counted in the next
			// record's unrecordedOverall: none lost, none counted twice.
			// (The last record alone need not carry the count: on a slow
			// machine the loop's last refusal may have found a token.)
			if got := storetest.RefusalsAccounted(t, db, enrol.ActionRefused, before); got != 2*addrs+1 {
				t.Fatalf("records plus their unrecordedOverall: %d, want %d refusals", got, 2*addrs+1)
			}
		})
	}
}
