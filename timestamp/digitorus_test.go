package timestamp

import (
	"testing"
	"time"

	dtimestamp "github.com/digitorus/timestamp"

	"github.com/thiqa/thiqa/timestamp/tsp"
)

// TestDigitorusReadsTokens: pdfsign (and so signer/) parses time-stamp
// replies with digitorus/timestamp, which also checks the CMS signature when
// certificates are included. Our tokens must read there unchanged.
func TestDigitorusReadsTokens(t *testing.T) {
	for name, tc := range map[string]struct {
		cfg Config
		rsa bool
	}{
		"p256":           {cfg: Config{Qualified: true, Accuracy: 20 * time.Millisecond}},
		"rsa-pkcs1":      {rsa: true, cfg: Config{IncludeChain: true, SigningTime: true}},
		"p256-with-name": {cfg: Config{IncludeTSAName: true}},
	} {
		t.Run(name, func(t *testing.T) {
			var pki *testPKI
			if tc.rsa {
				pki = newTestPKI(t, rsaKey(t))
			}
			tsa := newTestTSA(t, tc.cfg, pki)
			raw, st := tsa.Respond(t.Context(), goQuery(t, nil), "")
			if st.Status != tsp.StatusGranted {
				t.Fatal(st)
			}
			ts, err := dtimestamp.ParseResponse(raw)
			if err != nil {
				t.Fatalf("digitorus/timestamp: %v", err)
			}
			if ts.Nonce.Int64() != 42 || ts.SerialNumber.Int64() != 1 || len(ts.Certificates) == 0 ||
				ts.Qualified != tc.cfg.Qualified || time.Since(ts.Time) > time.Minute {
				t.Errorf("digitorus reads %+v", ts)
			}
			if want := tc.cfg.Accuracy; want != 0 && ts.Accuracy != want {
				t.Errorf("accuracy %v, want %v", ts.Accuracy, want)
			}
		})
	}
}
