package identity_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"errors"
	"io"
	"math/big"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"

	"github.com/thiqa/thiqa/identity"
	"github.com/thiqa/thiqa/internal/audit"
	"github.com/thiqa/thiqa/internal/auth/authtest"
	"github.com/thiqa/thiqa/internal/pin"
	"github.com/thiqa/thiqa/policies"
	"github.com/thiqa/thiqa/store/storetest"
)

// jwks returns a JWK set of one P-256 key, public or private.
func jwks(t *testing.T, private bool) string {
	t.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	var key any = &k.PublicKey
	if private {
		key = k
	}
	set, err := json.Marshal(jose.JSONWebKeySet{Keys: []jose.JSONWebKey{{Key: key, KeyID: "a", Algorithm: "ES256", Use: "sig"}}})
	if err != nil {
		t.Fatal(err)
	}
	return string(set)
}

// rsaJWKS returns a JWK set of one public RSA key of that size.
func rsaJWKS(t *testing.T, bits int) json.RawMessage {
	t.Helper()
	k, err := rsa.GenerateKey(rand.Reader, bits)
	if err != nil {
		t.Fatal(err)
	}
	set, err := json.Marshal(jose.JSONWebKeySet{Keys: []jose.JSONWebKey{{Key: &k.PublicKey, KeyID: "r", Algorithm: "PS256", Use: "sig"}}})
	if err != nil {
		t.Fatal(err)
	}
	return set
}

// TestNewClient: what a registration must be, whichever way it comes (the
// API or `thiqa oidc client add`); every refusal a *RegistrationError.
func TestNewClient(t *testing.T) {
	pub, priv := json.RawMessage(jwks(t, false)), json.RawMessage(jwks(t, true))
	ok := []identity.ClientRegistration{
		{Name: "Tax portal", RedirectURIs: []string{"https://tax.example.om/cb"}, JWKS: pub},
		{Name: "Dev portal", RedirectURIs: []string{"http://127.0.0.1:9000/cb", "http://localhost/cb", "http://[::1]/cb"}, TLSSubject: "CN=Dev"},
		{Name: "RSA portal", RedirectURIs: []string{"https://rsa.example.om/cb"}, JWKS: rsaJWKS(t, 2048)},
		{Name: "Two hosts, one sector", RedirectURIs: []string{"https://a.health.example.om/cb", "https://b.health.example.om/cb"}, Sector: "health.example.om", JWKS: pub},
	}
	for _, r := range ok {
		c, err := identity.NewClient(r)
		if err != nil || !strings.HasPrefix(c.ID, "oidc-") || len(c.ID) != 29 || c.Name != r.Name {
			t.Fatalf("%s: %+v %v", r.Name, c, err)
		}
		if want := identity.AuthTLSClient; len(r.JWKS) > 0 && c.AuthMethod != identity.AuthPrivateKeyJWT || len(r.JWKS) == 0 && (c.AuthMethod != want || c.TLSSubject != "CN=Dev") {
			t.Fatalf("%s: auth method %s", r.Name, c.AuthMethod)
		}
	}
	many := make([]string, 21)
	for i := range many {
		many[i] = "https://x.example.om/cb"
	}
	for _, c := range []struct {
		name string
		r    identity.ClientRegistration
		want string
	}{
		{"plain http", identity.ClientRegistration{Name: "x", RedirectURIs: []string{"http://evil.example/cb"}, TLSSubject: "CN=x"}, "must be https"},
		{"fragment", identity.ClientRegistration{Name: "x", RedirectURIs: []string{"https://x.example.om/cb#f"}, TLSSubject: "CN=x"}, "without fragment"},
		{"user info", identity.ClientRegistration{Name: "x", RedirectURIs: []string{"https://u@x.example.om/cb"}, TLSSubject: "CN=x"}, "user info"},
		{"relative", identity.ClientRegistration{Name: "x", RedirectURIs: []string{"/cb"}, TLSSubject: "CN=x"}, "absolute"},
		{"no name", identity.ClientRegistration{RedirectURIs: []string{"https://x.example.om/cb"}, TLSSubject: "CN=x"}, "a name"},
		{"21 URIs", identity.ClientRegistration{Name: "x", RedirectURIs: many, TLSSubject: "CN=x"}, "1 to 20"},
		{"several hosts, no sector", identity.ClientRegistration{Name: "x", RedirectURIs: []string{"https://tax.example.om/cb", "https://x.example/cb"}, TLSSubject: "CN=x"}, "need a sector"},
		{"both", identity.ClientRegistration{Name: "x", RedirectURIs: []string{"https://x.example.om/cb"}, TLSSubject: "CN=x", JWKS: pub}, "exactly one"},
		{"neither", identity.ClientRegistration{Name: "x", RedirectURIs: []string{"https://x.example.om/cb"}}, "exactly one"},
		{"private key", identity.ClientRegistration{Name: "x", RedirectURIs: []string{"https://x.example.om/cb"}, JWKS: priv}, "private key"},
		{"empty set", identity.ClientRegistration{Name: "x", RedirectURIs: []string{"https://x.example.om/cb"}, JWKS: json.RawMessage(`{"keys":[]}`)}, "empty"},
		{"not a set", identity.ClientRegistration{Name: "x", RedirectURIs: []string{"https://x.example.om/cb"}, JWKS: json.RawMessage(`[1]`)}, "want a JWK set"},
		{"short RSA key", identity.ClientRegistration{Name: "x", RedirectURIs: []string{"https://x.example.om/cb"}, JWKS: rsaJWKS(t, 1024)}, "at least 2048"},
		{"encryption key", identity.ClientRegistration{Name: "x", RedirectURIs: []string{"https://x.example.om/cb"},
			JWKS: json.RawMessage(strings.Replace(string(pub), `"use":"sig"`, `"use":"enc"`, 1))}, "want sig"},
	} {
		_, err := identity.NewClient(c.r)
		var bad *identity.RegistrationError
		if !errors.As(err, &bad) || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: %v, want a refusal naming %q", c.name, err, c.want)
		}
	}
}

// TestClientAPI drives POST /api/v1/oidc/clients behind the real
// authenticator on SQLite and PostgreSQL: operators register portals,
// everyone else is refused, bad registrations are 400 problems, and every
// outcome is in the audit log, refusals naming the caller.
func TestClientAPI(t *testing.T) {
	for _, d := range storetest.Dialects() {
		t.Run(d.Name, func(t *testing.T) {
			db := storetest.Open(t, d.NewConfig(t))
			log := audit.New(db, nil, nil, audit.Options{})
			t.Cleanup(log.Close)
			is := authtest.New(t, log)
			mux := http.NewServeMux()
			(&identity.ClientAPI{Store: db.Identity(), Audit: log}).Register(mux, is.Authn.Require)
			srv := httptest.NewServer(mux)
			t.Cleanup(srv.Close)
			post := func(body, token string) (int, string) {
				t.Helper()
				req, _ := http.NewRequest(http.MethodPost, srv.URL+identity.PathClients, strings.NewReader(body))
				req.Header.Set("Content-Type", "application/json")
				if token != "" {
					req.Header.Set("Authorization", "Bearer "+token)
				}
				resp, err := http.DefaultClient.Do(req)
				if err != nil {
					t.Fatal(err)
				}
				defer resp.Body.Close()
				b, _ := io.ReadAll(resp.Body)
				return resp.StatusCode, string(b)
			}
			op := is.Token(t, "operator-1", policies.RoleOperator)
			officer := is.Token(t, "officer-1", policies.RoleRegistrationOfficer)
			body := `{"name":"Tax portal","redirectURIs":["https://tax.example.om/cb"],"jwks":` + jwks(t, false) + `}`

			st, out := post(body, op)
			var created map[string]string
			if st != http.StatusCreated || json.Unmarshal([]byte(out), &created) != nil || !strings.HasPrefix(created["client_id"], "oidc-") {
				t.Fatalf("register: %d %s", st, out)
			}
			c, err := db.Identity().Client(t.Context(), created["client_id"])
			if err != nil || c.Name != "Tax portal" || c.AuthMethod != identity.AuthPrivateKeyJWT || c.RedirectURIs[0] != "https://tax.example.om/cb" {
				t.Fatalf("the registered client: %+v %v", c, err)
			}
			if st, _ := post(body, officer); st != http.StatusForbidden {
				t.Fatalf("registration officer registered a client: %d", st)
			}
			if st, _ := post(body, ""); st != http.StatusUnauthorized {
				t.Fatalf("anonymous registration: %d", st)
			}
			if st, out := post(`{"name":"x","redirectURIs":["https://x.example.om/cb"],"jwks":`+jwks(t, true)+`}`, op); st != http.StatusBadRequest || !strings.Contains(out, "private key") {
				t.Fatalf("private key registered: %d %s", st, out)
			}
			if st, out := post(`{"name":"x","redirectURIs":["http://evil.example/cb"],"tlsSubject":"CN=x"}`, op); st != http.StatusBadRequest || !strings.Contains(out, "must be https") {
				t.Fatalf("plain-http redirect URI registered: %d %s", st, out)
			}
			if st, out := post(`{"name":"x","redirectURIs":["https://x.example.om/cb"],"tlsSubject":"CN=x","extra":1}`, op); st != http.StatusBadRequest || !strings.Contains(out, "Malformed request") {
				t.Fatalf("unknown field: %d %s", st, out)
			}

			if rep, err := audit.Verify(t.Context(), db); err != nil || !rep.OK() {
				t.Fatalf("audit verify: %v %v", rep, err)
			}
			if n := storetest.AuditCount(t, db, identity.ActionAddClient, audit.OutcomeSuccess); n != 1 {
				t.Fatalf("%d client registrations recorded, want 1", n)
			}
			// 403 and 401 from the guard, three 400s from the API: each names the caller it knows.
			var refused []audit.Record
			_ = db.AuditRecords(t.Context(), 1, func(r audit.Record) error {
				if r.Action == string(policies.ActionManageClients) && r.Outcome == audit.OutcomeRefused {
					refused = append(refused, r)
				}
				return nil
			})
			if len(refused) != 5 {
				t.Fatalf("%d refusals recorded, want 5", len(refused))
			}
			for _, r := range refused[2:] {
				var d struct {
					Caller struct{ Subject string } `json:"caller"`
					Status int                      `json:"status"`
				}
				if json.Unmarshal(r.Details, &d) != nil || r.Actor != "operator-1" || d.Caller.Subject != "operator-1" || d.Status != http.StatusBadRequest {
					t.Fatalf("refusal record %s %s", r.Actor, r.Details)
				}
			}
		})
	}
}

// fixedStatus answers every certificate status question the same.
type fixedStatus identity.CertificateStatus

func (s fixedStatus) Status(context.Context, *x509.Certificate) (identity.CertificateStatus, error) {
	return identity.CertificateStatus(s), nil
}

// credentials are issued credentials by ID.
type credentials map[string]*identity.IssuedCredential

func (c credentials) IssuedCredential(_ context.Context, id string) (*identity.IssuedCredential, error) {
	if rec, ok := c[id]; ok {
		return rec, nil
	}
	return nil, identity.ErrNotFound
}

func credential(t *testing.T, serialNumber string, notAfter time.Time) *x509.Certificate {
	t.Helper()
	k, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(7), Subject: pkix.Name{CommonName: "Aisha", SerialNumber: serialNumber},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: notAfter}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &k.PublicKey, k)
	if err != nil {
		t.Fatal(err)
	}
	c, _ := x509.ParseCertificate(der)
	return c
}

// TestEnrolMobileID: only an issued, unexpired, unrevoked citizen-auth
// credential naming a civil number is enrolled, with a PIN of the allowed
// length, once; the enrolment is stored and audited.
func TestEnrolMobileID(t *testing.T) {
	for _, d := range storetest.Dialects() {
		t.Run(d.Name, func(t *testing.T) {
			ctx := t.Context()
			db := storetest.Open(t, d.NewConfig(t))
			log := audit.New(db, nil, nil, audit.Options{})
			t.Cleanup(log.Close)
			params := pin.DefaultParams()
			params.Time, params.MemoryKiB = 1, 64
			pins, err := pin.New(db.Identity(), params)
			if err != nil {
				t.Fatal(err)
			}
			year := time.Now().Add(365 * 24 * time.Hour)
			creds := credentials{
				"cred-ok":      {Certificate: credential(t, "IDCOM-12345678", year), Profile: identity.ProfileCitizenAuth, Serial: "0a"},
				"cred-signing": {Certificate: credential(t, "IDCOM-12345678", year), Profile: "citizen-signing", Serial: "0b"},
				"cred-expired": {Certificate: credential(t, "IDCOM-12345678", time.Now().Add(-time.Minute)), Profile: identity.ProfileCitizenAuth, Serial: "0c"},
				"cred-nocivil": {Certificate: credential(t, "", year), Profile: identity.ProfileCitizenAuth, Serial: "0d"},
				"cred-act":     {Certificate: credential(t, "IDCOM-23456789", year), Profile: identity.ProfileCitizenAuth, Serial: "0e"},
			}
			e := identity.Enrolment{Credentials: creds, Status: fixedStatus{Known: true}, Store: db.Identity(), PINs: pins, Audit: log}
			for _, c := range []struct {
				cred, pin, want string
				status          fixedStatus
			}{
				{"cred-none", "135790", "no issued certificate", fixedStatus{}},
				{"cred-signing", "135790", "mobile ID needs citizen-auth", fixedStatus{Known: true}},
				{"cred-expired", "135790", "expired", fixedStatus{Known: true}},
				{"cred-ok", "135790", "revoked", fixedStatus{Known: true, Revoked: true}},
				{"cred-nocivil", "135790", "no civil number", fixedStatus{Known: true}},
				{"cred-ok", "123", "6 to 64 characters", fixedStatus{Known: true}},
				{"cred-ok", "123456", "in order", fixedStatus{Known: true}},
			} {
				e.Status = c.status
				if _, err := identity.EnrolMobileID(ctx, e, c.cred, c.pin, "cli:op"); err == nil || !strings.Contains(err.Error(), c.want) {
					t.Errorf("%s: %v, want a refusal naming %q", c.cred, err, c.want)
				}
			}
			e.Status = fixedStatus{Known: true}
			civil, err := identity.EnrolMobileID(ctx, e, "cred-ok", "135790", "cli:op")
			if err != nil || civil != "12345678" {
				t.Fatalf("enrol: %q %v", civil, err)
			}
			if id, err := db.Identity().MobileCredentialID(ctx, "12345678"); err != nil || id != "cred-ok" {
				t.Fatalf("the enrolment: %q %v", id, err)
			}
			if err := pins.Check(ctx, "cred-ok", "135790"); err != nil {
				t.Fatalf("the login PIN: %v", err)
			}
			if _, err := identity.EnrolMobileID(ctx, e, "cred-ok", "246801", "cli:op"); !errors.Is(err, pin.ErrAlreadySet) {
				t.Fatalf("enrolling twice: %v", err)
			}
			if _, _, err := identity.EnrolMobileIDForActivation(ctx, e, "cred-ok", "cli:op"); !errors.Is(err, pin.ErrAlreadySet) {
				t.Fatalf("an activation for a mobile ID with a PIN: %v", err)
			}

			// Sole control: enrolled with an activation code, the PIN the citizen's.
			if _, _, err := identity.EnrolMobileIDForActivation(ctx, e, "cred-signing", "cli:op"); err == nil {
				t.Fatal("a citizen-signing credential enrolled for activation")
			}
			civil, first, err := identity.EnrolMobileIDForActivation(ctx, e, "cred-act", "cli:op")
			if err != nil || civil != "23456789" || first.Code == "" {
				t.Fatalf("enrol for activation: %q %+v %v", civil, first, err)
			}
			if _, err := db.Identity().MobileCredentialID(ctx, "23456789"); !errors.Is(err, identity.ErrNotFound) {
				t.Fatalf("a mobile ID without its PIN is usable: %v", err)
			}
			_, second, err := identity.EnrolMobileIDForActivation(ctx, e, "cred-act", "cli:op")
			if err != nil || second.Code == first.Code {
				t.Fatalf("enrolling again: %+v %v", second, err)
			}
			if err := pins.Activate(ctx, "cred-act", first.Code, "864209"); !errors.Is(err, pin.ErrWrongCode) {
				t.Fatalf("the replaced code: %v", err)
			}
			if err := pins.Activate(ctx, "cred-act", second.Code, "864209"); err != nil {
				t.Fatalf("activation: %v", err)
			}
			if id, err := db.Identity().MobileCredentialID(ctx, "23456789"); err != nil || id != "cred-act" {
				t.Fatalf("the activated mobile ID: %q %v", id, err)
			}
			if n := storetest.AuditCount(t, db, identity.ActionEnrolMobile, audit.OutcomeSuccess); n != 3 {
				t.Fatalf("%d enrolments recorded, want 3", n)
			}
		})
	}
}
