package enrol_test

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/thiqa/thiqa/ca/catest"
	"github.com/thiqa/thiqa/ca/revocation"
	"github.com/thiqa/thiqa/enrol"
	"github.com/thiqa/thiqa/internal/audit"
	"github.com/thiqa/thiqa/policies"
	"github.com/thiqa/thiqa/store"
	"github.com/thiqa/thiqa/store/storetest"
)

// voidFixture is an enrolment service on a fresh store of dialect d,
// its routes behind a guard that lets through only callers whose
// X-Test-Action header names the action asked for.
func voidFixture(t *testing.T, d storetest.Dialect) (*store.DB, *enrol.Service, *http.ServeMux) {
	t.Helper()
	db := storetest.Open(t, d.NewConfig(t))
	log := audit.New(db, nil, nil, audit.Options{})
	t.Cleanup(log.Close)
	pki := catest.New(t, db.Certificates(nil), log, "http://pki.thiqa.test")
	key, _ := rsa.GenerateKey(rand.Reader, 2048)
	svc, err := enrol.New(enrol.Config{Store: db.Enrolments(), Issuer: pki.Authority, Certificates: db.Certificates(nil),
		Status: revocation.NewChecker(db.Certificates(nil), time.Second, nil), Audit: log, SecretKey: key,
		Profiles: []string{policies.ProfileCitizenAuth}})
	if err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	svc.Register(mux, func(a policies.Action) func(http.Handler) http.Handler {
		return func(h http.Handler) http.Handler {
			return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				if r.Header.Get("X-Test-Action") != string(a) {
					http.Error(w, "forbidden", http.StatusForbidden)
					return
				}
				h.ServeHTTP(w, r)
			})
		}
	})
	return db, svc, mux
}

// auditDetails returns the details of the records of action with outcome.
func auditDetails(t *testing.T, db *store.DB, action, outcome string) []map[string]any {
	t.Helper()
	var out []map[string]any
	err := db.AuditRecords(context.Background(), 1, func(r audit.Record) error {
		if r.Action == action && r.Outcome == outcome {
			var d map[string]any
			if err := json.Unmarshal(r.Details, &d); err != nil {
				return err
			}
			out = append(out, d)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// TestVoid on both stores: a void enrolment is refused by every later use
// (ErrVoid, the same claim refused), voiding it again answers it as it is,
// a used one cannot be voided (ErrUsed), an unknown reference is
// ErrNotFound, one claimed by a request now is ErrBusy; each outcome is
// audited with its reason.
func TestVoid(t *testing.T) {
	for _, d := range storetest.Dialects() {
		t.Run(d.Name, func(t *testing.T) {
			db, svc, _ := voidFixture(t, d)
			ctx := t.Context()
			c, err := svc.Create(ctx, "officer-1", "citizen-auth", citizen(), 0)
			if err != nil {
				t.Fatal(err)
			}
			e, err := svc.Void(ctx, "officer-2", c.Reference, "letter lost in the post")
			if err != nil {
				t.Fatal(err)
			}
			if e.State != enrol.StateVoid || e.Voided.IsZero() || time.Until(e.Expires) > time.Second || e.Serial != "" {
				t.Fatalf("voided: %+v", e)
			}
			got, err := svc.CheckSecret(ctx, c.Reference, c.Secret)
			if err != nil {
				t.Fatal(err)
			}
			if err := svc.Usable(got); !errors.Is(err, enrol.ErrVoid) {
				t.Fatalf("usable after a void: %v", err)
			}
			// A request that read the enrolment before its void cannot claim it.
			before := *got
			before.State, before.Expires = enrol.StateOpen, time.Now().Add(time.Hour)
			if _, err := svc.Enrol(ctx, &before, "est:1", enrol.Key{}, "est"); !errors.Is(err, enrol.ErrVoid) {
				t.Fatalf("claim after a void: %v", err)
			}
			again, err := svc.Void(ctx, "officer-2", c.Reference, "")
			if err != nil || again.State != enrol.StateVoid || !again.Voided.Equal(e.Voided) {
				t.Fatalf("voided twice: %+v %v", again, err)
			}
			if _, err := svc.Void(ctx, "officer-2", "AAAAAAAAAAAAAAAA", ""); !errors.Is(err, enrol.ErrNotFound) {
				t.Fatalf("unknown reference: %v", err)
			}
			if _, err := svc.Void(ctx, "officer-2", c.Reference, strings.Repeat("x", enrol.MaxVoidReason+1)); err == nil {
				t.Fatal("an overlong reason was accepted")
			}

			busy, _ := svc.Create(ctx, "officer-1", "citizen-auth", citizen(), 0)
			now := time.Now()
			if err := db.Enrolments().ClaimEnrolment(ctx, busy.Reference, "est:x", now, now.Add(-enrol.ClaimTimeout)); err != nil {
				t.Fatal(err)
			}
			if _, err := svc.Void(ctx, "officer-2", busy.Reference, ""); !errors.Is(err, enrol.ErrBusy) {
				t.Fatalf("void while claimed: %v", err)
			}
			if err := db.Enrolments().CompleteEnrolment(ctx, busy.Reference, "est:x", "0a0b", now, nil); err != nil {
				t.Fatal(err)
			}
			if _, err := svc.Void(ctx, "officer-2", busy.Reference, ""); !errors.Is(err, enrol.ErrUsed) {
				t.Fatalf("void of a used enrolment: %v", err)
			}

			ok := auditDetails(t, db, enrol.ActionVoid, "success")
			if len(ok) != 2 || ok[0]["reason"] != "letter lost in the post" || ok[1]["already"] != true {
				t.Fatalf("successful voids audited: %v", ok)
			}
			if n := storetest.AuditCount(t, db, enrol.ActionVoid, "refused"); n != 4 {
				t.Fatalf("%d refused voids audited, want 4", n)
			}
		})
	}
}

// TestVoidHTTP: POST /api/v1/enrolments/{reference}/void is behind the
// create-enrolment action; it answers 200 with the enrolment's state, the
// same on a second void, 404 for an unknown reference, 409
// enrolment-used once the enrolment was used, 400 for a malformed body.
func TestVoidHTTP(t *testing.T) {
	db, svc, mux := voidFixture(t, storetest.Dialects()[0])
	ctx := t.Context()
	c, err := svc.Create(ctx, "officer-1", "citizen-auth", citizen(), 0)
	if err != nil {
		t.Fatal(err)
	}
	post := func(ref, action, body string) (*httptest.ResponseRecorder, map[string]any) {
		t.Helper()
		r := httptest.NewRequest(http.MethodPost, "/api/v1/enrolments/"+ref+"/void", strings.NewReader(body))
		r.Header.Set("X-Test-Action", action)
		w := httptest.NewRecorder()
		mux.ServeHTTP(w, r)
		var out map[string]any
		_ = json.Unmarshal(w.Body.Bytes(), &out)
		return w, out
	}
	// The route is guarded by its own action, so a refused void is
	// recorded as enrolment.void, not as a refused enrolment.create.
	officer := string(policies.ActionVoidEnrolment)
	for _, other := range []string{"something-else", string(policies.ActionCreateEnrolment)} {
		if w, _ := post(c.Reference, other, `{"reason":"x"}`); w.Code != http.StatusForbidden {
			t.Fatalf("guarded by %s: %d %s", other, w.Code, w.Body)
		}
	}
	if w, _ := post(c.Reference, officer, `{"reason":1}`); w.Code != http.StatusBadRequest {
		t.Fatalf("malformed body: %d %s", w.Code, w.Body)
	}
	if w, _ := post(c.Reference, officer, `{"reason":"x","more":1}`); w.Code != http.StatusBadRequest {
		t.Fatalf("unknown key: %d %s", w.Code, w.Body)
	}
	w, out := post(c.Reference, officer, `{"reason":"sent over plain HTTP"}`)
	if w.Code != http.StatusOK || out["state"] != "void" || out["reference"] != c.Reference || out["voided"] == nil || out["secret"] != nil {
		t.Fatalf("void: %d %s", w.Code, w.Body)
	}
	if w, out := post(c.Reference, officer, ""); w.Code != http.StatusOK || out["state"] != "void" {
		t.Fatalf("void twice: %d %s", w.Code, w.Body)
	}
	if w, out := post("AAAAAAAAAAAAAAAA", officer, ""); w.Code != http.StatusNotFound || out["type"] != enrol.ProblemNotFound {
		t.Fatalf("unknown reference: %d %s", w.Code, w.Body)
	}
	used, _ := svc.Create(ctx, "officer-1", "citizen-auth", citizen(), 0)
	now := time.Now()
	if err := db.Enrolments().ClaimEnrolment(ctx, used.Reference, "est:x", now, now.Add(-enrol.ClaimTimeout)); err != nil {
		t.Fatal(err)
	}
	if w, out := post(used.Reference, officer, ""); w.Code != http.StatusConflict || out["type"] != enrol.ProblemBusy {
		t.Fatalf("claimed now: %d %s", w.Code, w.Body)
	}
	if err := db.Enrolments().CompleteEnrolment(ctx, used.Reference, "est:x", "0a0b", now, nil); err != nil {
		t.Fatal(err)
	}
	if w, out := post(used.Reference, officer, ""); w.Code != http.StatusConflict || out["type"] != enrol.ProblemUsed {
		t.Fatalf("used: %d %s", w.Code, w.Body)
	}
	got := fmt.Sprint(auditDetails(t, db, enrol.ActionVoid, "success"))
	if !strings.Contains(got, "sent over plain HTTP") {
		t.Fatalf("void records: %s", got)
	}
}
