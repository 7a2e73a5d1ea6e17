package timestamp

import (
	"bytes"
	"crypto"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"

	"github.com/thiqa/thiqa/internal/outage"
	"github.com/thiqa/thiqa/internal/problem"
	"github.com/thiqa/thiqa/timestamp/tsp"
)

// gatedKey is a unit key that fails with err while err is set, the way
// hsm fails (a marked outage) when the token cannot be used for now.
type gatedKey struct {
	crypto.Signer
	err atomic.Pointer[error]
}

func (k *gatedKey) Sign(r io.Reader, digest []byte, opts crypto.SignerOpts) ([]byte, error) {
	if e := k.err.Load(); e != nil {
		return nil, *e
	}
	return k.Signer.Sign(r, digest, opts)
}

// TestUnitKeyUnavailable: while the unit key's token is unavailable for
// now the TSA answers systemFailure (RFC 3161 has no "try later") with
// HTTP 503 and a Retry-After, counted as a systemFailure rejection; the
// in-process Issue keeps the outage visible (outage.Is) for the signing
// service. Any other signing failure stays a systemFailure with HTTP 200.
func TestUnitKeyUnavailable(t *testing.T) {
	pki := newTestPKI(t, nil)
	key := &gatedKey{Signer: pki.unitKey}
	pki.unitKey = key
	tsa := newTestTSA(t, Config{}, pki)
	srv := httptest.NewServer(tsa.Handler(nil))
	defer srv.Close()
	for _, c := range []struct {
		name   string
		err    error
		status int
	}{
		{"token-unavailable", fmt.Errorf("hsm: signing with key %q: %w", "tsa", outage.Mark(errors.New("pkcs11: 0x30: CKR_DEVICE_ERROR"))), http.StatusServiceUnavailable},
		{"other-failure", errors.New("hsm: signing with key \"tsa\": pkcs11: 0x70: CKR_MECHANISM_INVALID"), http.StatusOK},
		{"token-back", nil, http.StatusOK},
	} {
		t.Run(c.name, func(t *testing.T) {
			if c.err != nil {
				key.err.Store(&c.err)
			} else {
				key.err.Store(nil)
			}
			before := testCounter(t, tsa, "thiqa_tsa_rejections_total", "systemFailure")
			resp, err := http.Post(srv.URL, QueryContentType, bytes.NewReader(goQuery(t, nil)))
			if err != nil {
				t.Fatal(err)
			}
			raw, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != c.status {
				t.Fatalf("HTTP %d, want %d", resp.StatusCode, c.status)
			}
			if ra := resp.Header.Get("Retry-After"); (c.status == http.StatusServiceUnavailable) != (ra == problem.RetryAfterSeconds) {
				t.Fatalf("HTTP %d with Retry-After %q", resp.StatusCode, ra)
			}
			r, err := tsp.ParseResponse(raw)
			if err != nil {
				t.Fatal(err)
			}
			after := testCounter(t, tsa, "thiqa_tsa_rejections_total", "systemFailure")
			if c.err == nil {
				if r.Status.Status != tsp.StatusGranted || after != before {
					t.Fatalf("status %v, systemFailure count %v -> %v", r.Status, before, after)
				}
				return
			}
			if r.Status.Status != tsp.StatusRejection || r.Status.FailInfo != tsp.SystemFailure || after != before+1 {
				t.Fatalf("status %v, systemFailure count %v -> %v", r.Status, before, after)
			}
			// Thiqa's own client reads the refusal in a 503 as in a 200.
			client, err := NewClient(srv.URL, ClientOptions{})
			if err != nil {
				t.Fatal(err)
			}
			sum := sha256.Sum256([]byte("data"))
			var se *StatusError
			if _, err := client.Timestamp(t.Context(), sum[:], crypto.SHA256); !errors.As(err, &se) || se.Status.FailInfo != tsp.SystemFailure {
				t.Fatalf("client: %v, want a systemFailure StatusError", err)
			}
			_, err = tsa.Issue(t.Context(), goQuery(t, nil), "")
			if !errors.As(err, &se) || se.Status.FailInfo != tsp.SystemFailure || outage.Is(err) != (c.status == http.StatusServiceUnavailable) {
				t.Fatalf("Issue: %v (marked %v)", err, outage.Is(err))
			}
		})
	}
}
