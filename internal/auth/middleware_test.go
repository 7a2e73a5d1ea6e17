package auth

import (
	"bytes"
	"encoding/json"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/thiqa/thiqa/internal/problem"
	"github.com/thiqa/thiqa/policies"
)

func TestRequire(t *testing.T) {
	f := newFixture(t, nil)
	reg := prometheus.NewRegistry()
	var logs bytes.Buffer
	a, err := New(Config{Issuers: []IssuerConfig{{Issuer: testIssuer, Audience: testAudience, JWKSFile: f.jwks}}},
		Options{Logger: slog.New(slog.NewJSONHandler(&logs, nil)), Registerer: reg, Now: f.clock.Now})
	if err != nil {
		t.Fatal(err)
	}
	var seen *Principal
	h := a.Require(policies.ActionSeal)(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		p, ok := FromContext(r.Context())
		if !ok {
			t.Error("no principal in context")
		}
		seen = p
		w.WriteHeader(http.StatusNoContent)
	}))
	srv := httptest.NewServer(h)
	defer srv.Close()

	do := func(token string) (*http.Response, problem.Details) {
		t.Helper()
		req, _ := http.NewRequest(http.MethodPost, srv.URL+"/api/v1/seal", nil)
		if token != "" {
			req.Header.Set("Authorization", "Bearer "+token)
		}
		resp, err := srv.Client().Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var pd problem.Details
		if resp.StatusCode >= 400 {
			if ct := resp.Header.Get("Content-Type"); ct != problem.ContentType {
				t.Fatalf("content type %q", ct)
			}
			if err := json.NewDecoder(resp.Body).Decode(&pd); err != nil {
				t.Fatal(err)
			}
		}
		return resp, pd
	}

	// No credentials: 401, plain challenge.
	resp, pd := do("")
	if resp.StatusCode != 401 || resp.Header.Get("WWW-Authenticate") != `Bearer realm="thiqa"` || pd.Status != 401 {
		t.Fatalf("no credentials: %d %q %+v", resp.StatusCode, resp.Header.Get("WWW-Authenticate"), pd)
	}
	// A bad token: 401 with error="invalid_token".
	bad := f.sign(t, map[string]any{"iss": testIssuer, "sub": "x", "aud": testAudience, "roles": []string{"agency"}})
	resp, pd = do(bad)
	if resp.StatusCode != 401 || !strings.Contains(resp.Header.Get("WWW-Authenticate"), `error="invalid_token"`) {
		t.Fatalf("bad token: %d %q", resp.StatusCode, resp.Header.Get("WWW-Authenticate"))
	}
	if !strings.Contains(pd.Detail, "exp") || strings.Contains(pd.Detail, bad) {
		t.Fatalf("bad token detail %q", pd.Detail)
	}
	// Wrong role: 403 naming the permission.
	citizen := f.sign(t, f.claims("12345678", "citizen"))
	resp, pd = do(citizen)
	if resp.StatusCode != 403 || !strings.Contains(pd.Detail, string(policies.ActionSeal)) {
		t.Fatalf("wrong role: %d %+v", resp.StatusCode, pd)
	}
	if seen != nil {
		t.Fatal("handler reached without permission")
	}
	// The right role reaches the handler with its principal.
	resp, _ = do(f.sign(t, f.claims("NTROM-1234567", "agency")))
	if resp.StatusCode != http.StatusNoContent || seen == nil || seen.OrganizationIdentifier != "NTROM-1234567" {
		t.Fatalf("agency: %d %+v", resp.StatusCode, seen)
	}

	for _, c := range []struct {
		method, outcome string
		want            float64
	}{{"none", "missing", 1}, {"jwt", "invalid", 1}, {"jwt", "forbidden", 1}, {"jwt", "allowed", 1}} {
		if got := testutil.ToFloat64(a.metrics.requests.WithLabelValues(c.method, c.outcome)); got != c.want {
			t.Errorf("thiqa_auth_requests_total{method=%q,outcome=%q} = %v, want %v", c.method, c.outcome, got, c.want)
		}
	}
	if n, err := testutil.GatherAndCount(reg, "thiqa_auth_requests_total"); err != nil || n != 4 {
		t.Errorf("gathered %d series (%v)", n, err)
	}
	// Refusals are logged with subject and reason, never with the token.
	out := logs.String()
	for _, tok := range []string{bad, citizen} {
		if strings.Contains(out, tok) || strings.Contains(out, strings.Split(tok, ".")[2]) {
			t.Fatal("a token reached the log")
		}
	}
	if !strings.Contains(out, `"subject":"12345678"`) || !strings.Contains(out, `"reason":"token has no expiry (exp)"`) {
		t.Fatalf("log lacks subject or reason:\n%s", out)
	}
}

func TestContextHelpers(t *testing.T) {
	req := httptest.NewRequest(http.MethodGet, "/", nil)
	if _, ok := FromContext(req.Context()); ok {
		t.Fatal("principal in an empty context")
	}
	p := &Principal{Subject: "op", Roles: []policies.Role{policies.RoleOperator}}
	got, ok := FromContext(WithPrincipal(req.Context(), p))
	if !ok || got != p || !got.Has(policies.RoleOperator) {
		t.Fatal("WithPrincipal/FromContext round trip failed")
	}
	var nilP *Principal
	if nilP.Has(policies.RoleOperator) || nilP.Allowed(policies.ActionWhoAmI) {
		t.Fatal("nil principal has a role")
	}
}

func TestMetricsRegistrationConflict(t *testing.T) {
	reg := prometheus.NewRegistry()
	if _, err := New(Config{}, Options{Registerer: reg}); err != nil {
		t.Fatal(err)
	}
	if _, err := New(Config{}, Options{Registerer: reg}); err == nil {
		t.Fatal("second registration on the same registry succeeded")
	}
}
