package auth

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/thiqa/thiqa/internal/audit"
	"github.com/thiqa/thiqa/internal/problem"
	"github.com/thiqa/thiqa/policies"
)

// memAudit keeps the entries appended; it fails when failing is set.
type memAudit struct {
	mu      sync.Mutex
	entries []audit.Entry
	failing bool
}

func (m *memAudit) Append(_ context.Context, e audit.Entry) (audit.Record, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.failing {
		return audit.Record{}, errors.New("database down")
	}
	m.entries = append(m.entries, e)
	return audit.Record{Seq: int64(len(m.entries))}, nil
}

// take returns the entries appended since the last call.
func (m *memAudit) take() []audit.Entry {
	m.mu.Lock()
	defer m.mu.Unlock()
	out := m.entries
	m.entries = nil
	return out
}

// details decodes an entry's details as the JSON the log stores.
func details(t *testing.T, e audit.Entry) map[string]any {
	t.Helper()
	b, err := json.Marshal(e.Details)
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatal(err)
	}
	return m
}

// TestRequireAuditsEveryRefusal: every refusal of Require leaves exactly
// one record naming the caller (or the certificate presented, or the
// peer), and an allowed request none.
func TestRequireAuditsEveryRefusal(t *testing.T) {
	f := newFixture(t, nil)
	ca := newTestCA(t, "Thiqa Test Client CA")
	revokedSerial := ""
	var unreachable bool
	rec := &memAudit{}
	a, err := New(Config{
		Issuers: []IssuerConfig{{Issuer: testIssuer, Audience: testAudience, JWKSFile: f.jwks}},
		MTLS:    MTLSConfig{ClientCAFiles: []string{ca.writePEM(t)}},
	}, Options{Logger: quietLogger(), Now: f.clock.Now, Audit: rec,
		CheckCertificate: func(_ context.Context, chain []*x509.Certificate) error {
			if unreachable {
				return errors.New("store unreachable")
			}
			if hex.EncodeToString(chain[0].SerialNumber.Bytes()) == revokedSerial {
				return fmt.Errorf("%w: revoked (keyCompromise)", ErrCertificateRefused)
			}
			return nil
		}})
	if err != nil {
		t.Fatal(err)
	}
	served := 0
	var lastType string // the problem type of the last answer
	h := a.Require(policies.ActionSeal)(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		served++
		w.WriteHeader(http.StatusNoContent)
	}))
	call := func(token string, cert *tls.Certificate) int {
		t.Helper()
		r := httptest.NewRequest(http.MethodPost, "/api/v1/seal", nil)
		r.RemoteAddr = "192.0.2.7:4711"
		if token != "" {
			r.Header.Set("Authorization", "Bearer "+token)
		}
		if cert != nil {
			r.TLS = &tls.ConnectionState{PeerCertificates: []*x509.Certificate{cert.Leaf},
				VerifiedChains: [][]*x509.Certificate{{cert.Leaf, ca.cert}}}
		}
		w := httptest.NewRecorder()
		h.ServeHTTP(w, r)
		var p problem.Details
		_ = json.Unmarshal(w.Body.Bytes(), &p)
		lastType = p.Type
		return w.Code
	}
	one := func(what string, status int, wantStatus int, actor string) map[string]any {
		t.Helper()
		if status != wantStatus {
			t.Fatalf("%s: status %d, want %d", what, status, wantStatus)
		}
		got := rec.take()
		if len(got) != 1 {
			t.Fatalf("%s: %d audit records, want exactly 1: %+v", what, len(got), got)
		}
		e := got[0]
		if e.Actor != actor || e.Action != string(policies.ActionSeal) || e.Outcome != audit.OutcomeRefused || e.Object != "/api/v1/seal" {
			t.Fatalf("%s: record %+v", what, e)
		}
		d := details(t, e)
		if d["status"] != float64(wantStatus) || d["reason"] == "" || d["remote"] != "192.0.2.7:4711" {
			t.Fatalf("%s: details %v", what, d)
		}
		return d
	}

	// Anonymous: the peer address.
	one("anonymous", call("", nil), 401, ActorAnonymous)
	// A token signed by an unknown key, an expired token, one for another
	// audience: unauthenticated, method jwt.
	other := newFixture(t, nil)
	d := one("unknown key", call(other.sign(t, f.claims("12345678", "citizen")), nil), 401, ActorUnauthenticated)
	if d["method"] != MethodJWT {
		t.Fatalf("unknown key: %v", d)
	}
	expired := f.claims("12345678", "citizen")
	expired["exp"] = f.clock.Now().Add(-time.Hour).Unix()
	one("expired token", call(f.sign(t, expired), nil), 401, ActorUnauthenticated)
	if lastType != ProblemCredentialsExpired {
		t.Fatalf("expired token: problem type %q", lastType)
	}
	aud := f.claims("12345678", "citizen")
	aud["aud"] = "someone-else"
	one("other audience", call(f.sign(t, aud), nil), 401, ActorUnauthenticated)
	if lastType != "" {
		t.Fatalf("other audience: problem type %q", lastType)
	}

	// An authenticated caller without the role: the caller by method,
	// subject and roles.
	d = one("citizen sealing", call(f.sign(t, f.claims("12345678", "citizen")), nil), 403, "12345678")
	caller, _ := d["caller"].(map[string]any)
	if caller["method"] != MethodJWT || caller["subject"] != "12345678" || fmt.Sprint(caller["roles"]) != "[citizen]" {
		t.Fatalf("forbidden caller: %v", d)
	}

	// A revoked client certificate: named by issuer and serial, with the reason.
	agency := ca.issue(t, agencySubject("NTROM-1234567"))
	if call("", &agency) != http.StatusNoContent || len(rec.take()) != 0 {
		t.Fatal("a good certificate was refused or audited")
	}
	revokedSerial = hex.EncodeToString(agency.Leaf.SerialNumber.Bytes())
	d = one("revoked certificate", call("", &agency), 401, ActorUnauthenticated)
	cert, _ := d["certificate"].(map[string]any)
	if cert["serial"] != revokedSerial || cert["issuer"] != ca.cert.Subject.String() || d["method"] != MethodMTLS {
		t.Fatalf("revoked certificate: %v", d)
	}
	// A certificate whose status cannot be read: refused (503), recorded.
	unreachable = true
	good := ca.issue(t, agencySubject("NTROM-7654321"))
	one("status unavailable", call("", &good), 503, ActorUnauthenticated)
	unreachable = false

	// A certificate that expired while its connection stayed open.
	short := ca.issue(t, pkix.Name{CommonName: "A", SerialNumber: "IDCOM-11111111"})
	if call("", &short) != http.StatusForbidden {
		t.Fatal("citizen certificate on the seal endpoint was not forbidden")
	}
	rec.take()
	f.clock.Advance(short.Leaf.NotAfter.Sub(f.clock.Now()) + time.Second)
	one("expired certificate", call("", &short), 401, ActorUnauthenticated)
	if lastType != ProblemCredentialsExpired {
		t.Fatalf("expired certificate: problem type %q", lastType)
	}

	// The refusal cannot be recorded: 500, and nothing else is answered.
	rec.failing = true
	if code := call("", nil); code != http.StatusInternalServerError {
		t.Fatalf("refusal with the audit log down: %d", code)
	}
	if served != 1 {
		t.Fatalf("the handler ran %d times, want once", served)
	}
}
