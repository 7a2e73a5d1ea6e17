package timestamp_test

import (
	"bytes"
	"context"
	"crypto"
	"crypto/x509"
	"encoding/hex"
	"encoding/json"
	"errors"
	"io"
	"math/big"
	"net/http"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/thiqa/thiqa/ca/revocation"
	"github.com/thiqa/thiqa/internal/audit"
	"github.com/thiqa/thiqa/store/storetest"
	"github.com/thiqa/thiqa/timestamp"
	"github.com/thiqa/thiqa/timestamp/tsp"
)

// Revoking the unit in use (`thiqa revoke`, the API: docs/operations.md,
// TSA clock loss) stops it on every node of a cluster: node a revokes it
// (its revocation service tells its TSA at once), node b learns of it from
// its revocation poller. Both answer 503 systemFailure and fail /readyz
// saying the unit is revoked; no token is signed by it afterwards; one
// node renews the unit with a new key (audited with reason revoked), the
// other adopts it, and both sign with the new unit.
func TestTSAUnitRevokedStopsAndRenews(t *testing.T) {
	for _, d := range storetest.Dialects() {
		t.Run(d.Name, func(t *testing.T) { runTSAUnitRevokedStopsAndRenews(t, d) })
	}
}

func runTSAUnitRevokedStopsAndRenews(t *testing.T, d storetest.Dialect) {
	f := newFixture(t, d)
	first, err := f.units.Init(t.Context(), "thiqa-init")
	if err != nil {
		t.Fatal(err)
	}
	a := f.serve(t, timestamp.NewStaticChecker(true), time.Hour)
	b := f.serve(t, timestamp.NewStaticChecker(true), time.Hour)
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	for _, n := range []*instance{a, b} {
		go n.svc.RenewLoop(ctx, time.Hour) // not due: only a revocation makes them renew
	}
	revA := newRevocations(t, f, a)
	revB := newRevocations(t, f, b)
	go revB.Poll(ctx, 50*time.Millisecond)

	data := filepath.Join(f.work, "d")
	writeFile(t, data, "revoked unit")
	q, err := os.ReadFile(f.query(t, data, "-sha256", "-cert"))
	if err != nil {
		t.Fatal(err)
	}
	for _, n := range []*instance{a, b} {
		if c := tokenSigner(t, n, q); !c.Equal(first.Cert) {
			t.Fatal("before the revocation, not signed by the unit")
		}
	}
	byFirst := func() int {
		n := 0
		for _, r := range f.records(t) {
			if r.unit == hex.EncodeToString(first.Cert.SerialNumber.Bytes()) {
				n++
			}
		}
		return n
	}
	before := byFirst()
	oldGrants := 0 // node b's tokens with the old unit before it learns of the revocation

	if _, err := revA.Revoke(t.Context(), "officer-7", hex.EncodeToString(first.Cert.SerialNumber.Bytes()), "keyCompromise", nil); err != nil {
		t.Fatal(err)
	}
	// Until a new unit serves, no node signs with the revoked one; each
	// node is checked until it serves the new unit.
	revoked := time.Now()
	deadline := revoked.Add(20 * time.Second)
	for i, n := range []*instance{a, b} {
		// Node a stops at once; node b once its poller has seen the
		// revocation (every 50 ms here): it may sign with the old unit
		// until then, and never after.
		noticed := i == 0
		for sawStop := false; ; {
			if time.Now().After(deadline) {
				t.Fatalf("no new unit within 20 s of the revocation (stopped: %v)", sawStop)
			}
			status, resp := postTSA(t, n.base, q)
			if resp.Status.Status == tsp.StatusGranted && certOf(t, resp).Equal(first.Cert) && !noticed && time.Since(revoked) < 2*time.Second {
				oldGrants++
				time.Sleep(10 * time.Millisecond)
				continue
			}
			noticed = true
			if resp.Status.Status != tsp.StatusGranted {
				if status != http.StatusServiceUnavailable || resp.Status.FailInfo != tsp.SystemFailure {
					t.Fatalf("while revoked: HTTP %d %s, want 503 systemFailure", status, resp.Status)
				}
				if err := n.svc.Ready(t.Context()); !errors.Is(err, timestamp.ErrUnitRevoked) {
					t.Fatalf("/readyz while revoked: %v, want ErrUnitRevoked", err)
				}
				sawStop = true
				time.Sleep(20 * time.Millisecond)
				continue
			}
			c := certOf(t, resp)
			if c.Equal(first.Cert) {
				t.Fatal("a token signed by the revoked unit after its revocation")
			}
			if pubEqual(c.PublicKey, first.Cert.PublicKey) {
				t.Fatal("the new unit has the revoked unit's key")
			}
			if err := n.svc.Ready(t.Context()); err != nil {
				t.Fatalf("not ready with the new unit: %v", err)
			}
			break
		}
	}
	if !a.svc.Unit().Cert.Equal(b.svc.Unit().Cert) {
		t.Fatal("the nodes sign with different new units")
	}
	if got := byFirst(); got != before+oldGrants {
		t.Fatalf("%d tokens recorded for the revoked unit after its revocation, want %d (node b before its notice)", got-before, oldGrants)
	}

	if n := f.unitKeys(t); n != 2 {
		t.Fatalf("%d unit keys, want the revoked one and one new key", n)
	}
	var reasons []string
	if err := f.db.AuditRecords(t.Context(), 1, func(r audit.Record) error {
		if r.Action == timestamp.ActionRenewUnit && r.Outcome == audit.OutcomeSuccess {
			var det struct {
				Reason   string `json:"reason"`
				Previous string `json:"previous"`
			}
			if err := json.Unmarshal(r.Details, &det); err != nil {
				return err
			}
			if det.Previous != hex.EncodeToString(first.Cert.SerialNumber.Bytes()) {
				t.Errorf("renewal record replaces %s", det.Previous)
			}
			reasons = append(reasons, det.Reason)
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if len(reasons) != 1 || reasons[0] != timestamp.RenewReasonRevoked {
		t.Fatalf("renewal records with reasons %q, want one with %q", reasons, timestamp.RenewReasonRevoked)
	}
	// A restart keeps the new unit, and the revoked one never signs again.
	c := f.serve(t, timestamp.NewStaticChecker(true), time.Hour)
	if !c.svc.Unit().Cert.Equal(a.svc.Unit().Cert) {
		t.Fatal("a restarted node does not serve the new unit")
	}
}

// A node that was down when its unit was revoked does not serve with it:
// it finds the revocation in the store as it starts and renews first.
func TestTSAUnitRevokedWhileDown(t *testing.T) {
	for _, d := range storetest.Dialects() {
		t.Run(d.Name, func(t *testing.T) {
			f := newFixture(t, d)
			first, err := f.units.Init(t.Context(), "thiqa-init")
			if err != nil {
				t.Fatal(err)
			}
			rev, err := revocation.New(revocation.Options{Store: f.db.Revocations(), Certificates: f.db.Certificates(nil), Audit: f.log})
			if err != nil {
				t.Fatal(err)
			}
			if _, err := rev.Revoke(t.Context(), "officer-7", hex.EncodeToString(first.Cert.SerialNumber.Bytes()), "cessationOfOperation", nil); err != nil {
				t.Fatal(err)
			}
			in := f.serve(t, timestamp.NewStaticChecker(true), time.Hour)
			if u := in.svc.Unit(); u.Cert.Equal(first.Cert) || pubEqual(u.Cert.PublicKey, first.Cert.PublicKey) {
				t.Fatal("started with the revoked unit")
			}
			if err := in.svc.Ready(t.Context()); err != nil {
				t.Fatalf("not ready: %v", err)
			}
		})
	}
}

// newRevocations is node n's revocation service: it tells n's TSA of
// every revocation, as cmd/thiqa wires it.
func newRevocations(t *testing.T, f *fixture, n *instance) *revocation.Service {
	t.Helper()
	rs, err := revocation.New(revocation.Options{Store: n.db.Revocations(), Certificates: n.db.Certificates(nil), Audit: f.log})
	if err != nil {
		t.Fatal(err)
	}
	rs.Watch(func(_ context.Context, r revocation.Revocation) {
		if serial, ok := parseHexSerial(r.Serial); ok {
			n.svc.Revoked(serial)
		}
	})
	return rs
}

// postTSA posts a DER request to n's /tsa and returns the HTTP status and
// the parsed reply.
func postTSA(t *testing.T, base string, der []byte) (int, *tsp.Response) {
	t.Helper()
	resp, err := http.Post(base+"/tsa", timestamp.QueryContentType, bytes.NewReader(der))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	r, err := tsp.ParseResponse(body)
	if err != nil {
		t.Fatalf("HTTP %d: parsing the reply: %v", resp.StatusCode, err)
	}
	return resp.StatusCode, r
}

// tokenSigner returns the certificate of the unit that signed n's token
// for q (which asks for it).
func tokenSigner(t *testing.T, n *instance, q []byte) *x509.Certificate {
	t.Helper()
	status, resp := postTSA(t, n.base, q)
	if status != http.StatusOK || resp.Status.Status != tsp.StatusGranted {
		t.Fatalf("HTTP %d %s, want a token", status, resp.Status)
	}
	return certOf(t, resp)
}

// certOf returns the signer's certificate a granted reply carries.
func certOf(t *testing.T, resp *tsp.Response) *x509.Certificate {
	t.Helper()
	tok, err := tsp.ParseToken(resp.Token)
	if err != nil || len(tok.Certificates) == 0 {
		t.Fatalf("token: %v", err)
	}
	c, err := x509.ParseCertificate(tok.Certificates[0])
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// parseHexSerial parses a serial as the store keys it (hex).
func parseHexSerial(s string) (*big.Int, bool) { return new(big.Int).SetString(s, 16) }

func pubEqual(a, b crypto.PublicKey) bool {
	e, ok := a.(interface{ Equal(crypto.PublicKey) bool })
	return ok && e.Equal(b)
}
