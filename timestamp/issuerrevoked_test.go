package timestamp_test

import (
	"bytes"
	"context"
	"encoding/hex"
	"encoding/json"
	"errors"
	"net/http"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/thiqa/thiqa/ca"
	"github.com/thiqa/thiqa/internal/audit"
	"github.com/thiqa/thiqa/policies"
	"github.com/thiqa/thiqa/store/storetest"
	"github.com/thiqa/thiqa/timestamp"
	"github.com/thiqa/thiqa/timestamp/tsp"
)

// The root revokes the TSA's issuing CA (key compromise: the root CRL
// lists it, docs/operations.md): from the moment the node has applied that
// CRL, its unit, certified by the revoked CA, signs nothing, as a revoked
// unit: 503 systemFailure, /readyz fails with ErrUnitIssuerRevoked,
// thiqa_tsa_unit_issuer_revoked is 1, no token is recorded, and each
// refusal has its timestamp.refuse audit item. Renewing fails while the CA
// issues nothing (audited, reason issuing-ca-revoked); once the CA is
// rolled over, the renewal certifies a new unit from the new generation,
// and the TSA time-stamps again.
func TestTSAUnitIssuerRevokedStops(t *testing.T) {
	for _, d := range storetest.Dialects() {
		t.Run(d.Name, func(t *testing.T) {
			f := newFixture(t, d)
			first, err := f.units.Init(t.Context(), "thiqa-init")
			if err != nil {
				t.Fatal(err)
			}
			in := f.serve(t, timestamp.NewStaticChecker(true), time.Hour)
			data := filepath.Join(f.work, "d")
			writeFile(t, data, "issuer revoked")
			q, err := os.ReadFile(f.query(t, data, "-sha256", "-cert"))
			if err != nil {
				t.Fatal(err)
			}
			if c := tokenSigner(t, in, q); !c.Equal(first.Cert) {
				t.Fatal("before the revocation, not signed by the unit")
			}
			if g := gauge(t, in, "thiqa_tsa_unit_issuer_revoked"); g != 0 {
				t.Fatalf("thiqa_tsa_unit_issuer_revoked %v before the revocation", g)
			}
			tokens := len(f.records(t))

			// The TSA's certifier opens the CA as cmd/thiqa does: from what
			// the data folder holds when it opens it (the newest generation).
			f.units.CA = &ca.UnitCertifier{CA: policies.IssuerTSA, Subject: unitSubject(),
				Open: func(context.Context) (*ca.Authority, error) { return f.pki.Authority, nil }}
			f.pki.RevokeCA(t, "tsa")
			const refusals = 3
			for range refusals {
				status, resp := postTSA(t, in.base, q)
				if status != http.StatusServiceUnavailable || resp.Status.Status != tsp.StatusRejection || resp.Status.FailInfo != tsp.SystemFailure {
					t.Fatalf("with the issuing CA revoked: HTTP %d %s, want 503 systemFailure", status, resp.Status)
				}
			}
			// Waiting does not help (the CA must be rolled over): no
			// Retry-After, unlike an outage's 503.
			if a := send(t, in.base+"/tsa", http.MethodPost, timestamp.QueryContentType, q); a.status != http.StatusServiceUnavailable || a.retryAfter != "" {
				t.Fatalf("with the issuing CA revoked: HTTP %d, Retry-After %q, want 503 without", a.status, a.retryAfter)
			}
			if err := in.svc.Ready(t.Context()); !errors.Is(err, timestamp.ErrUnitIssuerRevoked) || !errors.Is(err, ca.ErrIssuerRevoked) {
				t.Fatalf("/readyz with the issuing CA revoked: %v, want ErrUnitIssuerRevoked", err)
			}
			if g := gauge(t, in, "thiqa_tsa_unit_issuer_revoked"); g != 1 {
				t.Fatalf("thiqa_tsa_unit_issuer_revoked %v, want 1", g)
			}
			if n := len(f.records(t)); n != tokens {
				t.Fatalf("%d tokens recorded while the issuing CA is revoked", n-tokens)
			}
			if got := refusedItems(t, f, first.Cert.SerialNumber.Bytes()); got != refusals+1 {
				t.Fatalf("%d refusals audited, want %d", got, refusals)
			}

			// Renewing cannot help while the CA is revoked: audited as a
			// failure, and the unit stays stopped.
			if err := in.svc.RenewIfDue(t.Context(), time.Now()); !errors.Is(err, ca.ErrIssuerRevoked) {
				t.Fatalf("renewal with the issuing CA revoked: %v, want ca.ErrIssuerRevoked", err)
			}
			if status, _ := postTSA(t, in.base, q); status != http.StatusServiceUnavailable {
				t.Fatalf("after a failed renewal: HTTP %d", status)
			}
			if r := renewRecords(t, f, audit.OutcomeFailure); len(r) != 1 || r[0] != timestamp.RefuseReasonIssuerRevoked {
				t.Fatalf("failed renewal records with reasons %q, want one %q", r, timestamp.RefuseReasonIssuerRevoked)
			}

			// The operators roll the CA over: the next renewal certifies a
			// new unit from the new generation, which time-stamps.
			gen2 := f.pki.Rollover(t, "tsa")
			if !bytes.Equal(gen2.RawSubject, f.pki.CAs["tsa"].RawSubject) {
				t.Fatal("the new generation has another name: the check must tell generations of one name apart by key")
			}
			// No restart: the certifier, refused by the generation it
			// opened, opens the CA again and certifies from the new one.
			if err := in.svc.RenewIfDue(t.Context(), time.Now()); err != nil {
				t.Fatalf("renewal after the rollover: %v", err)
			}
			next := in.svc.Unit()
			if err := next.Cert.CheckSignatureFrom(gen2); err != nil || next.Cert.Equal(first.Cert) {
				t.Fatalf("the new unit is not certified by the new generation: %v", err)
			}
			status, resp := postTSA(t, in.base, q)
			if status != http.StatusOK || resp.Status.Status != tsp.StatusGranted || !certOf(t, resp).Equal(next.Cert) {
				t.Fatalf("after the rollover: HTTP %d %s, want a token from the new unit", status, resp.Status)
			}
			if err := in.svc.Ready(t.Context()); err != nil {
				t.Fatalf("not ready with the new unit: %v", err)
			}
			if g := gauge(t, in, "thiqa_tsa_unit_issuer_revoked"); g != 0 {
				t.Fatalf("thiqa_tsa_unit_issuer_revoked %v with the new unit", g)
			}
			if r := renewRecords(t, f, audit.OutcomeSuccess); len(r) != 1 || r[0] != timestamp.RefuseReasonIssuerRevoked {
				t.Fatalf("renewal records with reasons %q, want one %q", r, timestamp.RefuseReasonIssuerRevoked)
			}
		})
	}
}

// gauge reads a gauge of in's registry (-1 when absent).
func gauge(t *testing.T, in *instance, name string) float64 {
	t.Helper()
	mfs, err := in.reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() == name {
			return mf.GetMetric()[0].GetGauge().GetValue()
		}
	}
	return -1
}

// refusedItems counts the items of the timestamp.refuse records of the
// unit with that serial, each checked.
func refusedItems(t *testing.T, f *fixture, serial []byte) int {
	t.Helper()
	n := 0
	if err := f.db.AuditRecords(t.Context(), 1, func(r audit.Record) error {
		if r.Action != timestamp.ActionRefuse {
			return nil
		}
		var c struct {
			Count int                 `json:"count"`
			Items []map[string]string `json:"items"`
		}
		if err := json.Unmarshal(r.Details, &c); err != nil {
			return err
		}
		if r.Actor != timestamp.AuditActor || r.Object != hex.EncodeToString(serial) || r.Outcome != audit.OutcomeFailure || c.Count != len(c.Items) {
			t.Errorf("refusal record %+v", r)
		}
		for _, it := range c.Items {
			if it["reason"] != timestamp.RefuseReasonIssuerRevoked || it["requester"] == "" || it["error"] == "" || it["failInfo"] != "systemFailure" || it["address"] == "" {
				t.Errorf("refusal item %v", it)
			}
			n++
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	return n
}

// renewRecords returns the reasons of the tsa.unit.renew records with that outcome.
func renewRecords(t *testing.T, f *fixture, outcome string) []string {
	t.Helper()
	var reasons []string
	if err := f.db.AuditRecords(t.Context(), 1, func(r audit.Record) error {
		if r.Action == timestamp.ActionRenewUnit && r.Outcome == outcome {
			var det struct {
				Reason string `json:"reason"`
			}
			if err := json.Unmarshal(r.Details, &det); err != nil {
				return err
			}
			reasons = append(reasons, det.Reason)
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	return reasons
}
