package verify

import (
	"context"
	"testing"

	"github.com/thiqa/thiqa/verify/report"
)

// FuzzVerifyJAdES feeds arbitrary JWS serializations (and detached
// payloads) to VerifyJAdES: always a report, never a panic, and never
// TOTAL-PASSED without a trust anchor.
func FuzzVerifyJAdES(f *testing.F) {
	f.Add([]byte(`{"protected":"eyJhbGciOiJFUzI1NiIsImNyaXQiOlsic2lnVCJdLCJzaWdUIjoiMjAyNi0wNS0xNFQxMDozMDowMFoifQ","payload":"e30","signature":"AAAA"}`), []byte(nil))
	f.Add([]byte(`eyJhbGciOiJub25lIn0.e30.AA`), []byte(nil))
	f.Add([]byte(`{"signatures":[{"protected":"eyJhbGciOiJSUzI1NiJ9","header":{"etsiU":["eyJzaWdUc3QiOnsidHN0VG9rZW5zIjpbeyJ2YWwiOiJNQUE9In1dfX0"]},"signature":"AA"}]}`), []byte(`{}`))
	f.Add([]byte(`{"protected":"eyJhbGciOiJFUzI1NiIsIng1YyI6WyJNSUlCIl19","signature":"AAAA"}`), []byte(`{"a":1}`))
	v := New(Options{})
	f.Fuzz(func(t *testing.T, jws, payload []byte) {
		if payload != nil && len(payload) == 0 {
			payload = nil
		}
		rep, err := v.VerifyJAdES(context.Background(), jws, payload)
		if err != nil {
			t.Fatalf("error instead of a report: %v", err)
		}
		if rep.Indication == "" || rep.Indication == report.TotalPassed {
			t.Fatalf("verdict %q without a trust anchor", rep.Indication)
		}
	})
}
