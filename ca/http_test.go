package ca

import (
	"bytes"
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/thiqa/thiqa/internal/audit"
	"github.com/thiqa/thiqa/internal/outage"
	"github.com/thiqa/thiqa/internal/problem"
	"github.com/thiqa/thiqa/policies"
)

type fakeKeyGen struct {
	mu      sync.Mutex
	keys    map[string]crypto.Signer
	deleted []string
}

func (f *fakeKeyGen) GenerateKey(_ context.Context, profile string) (string, crypto.PublicKey, error) {
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return "", nil, err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	id := fmt.Sprintf("cred-%d", len(f.keys)+1)
	f.keys[id] = k
	return id, k.Public(), nil
}

func (f *fakeKeyGen) DeleteKey(_ context.Context, id string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.deleted = append(f.deleted, id)
	return nil
}

func post(t *testing.T, url string, body any) (*http.Response, []byte) {
	t.Helper()
	var b []byte
	switch v := body.(type) {
	case string:
		b = []byte(v)
	default:
		b, _ = json.Marshal(v)
	}
	resp, err := http.Post(url+"/api/v1/certificates", "application/json", bytes.NewReader(b))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	out, _ := io.ReadAll(resp.Body)
	return resp, out
}

func TestHTTPAPI(t *testing.T) {
	pki := newTestPKI(t, func(t testing.TB) crypto.Signer { return p384(t) })
	kg := &fakeKeyGen{keys: map[string]crypto.Signer{}}
	srv := httptest.NewServer(NewHandler(pki.authority, HandlerOptions{
		Caller:       func(*http.Request) string { return "officer-7" },
		KeyGenerator: kg,
	}))
	defer srv.Close()

	csr := string(newCSR(t, p384(t)))
	resp, body := post(t, srv.URL, IssueRequest{Profile: policies.ProfileCitizenSigning, Subject: subjectFor(policies.ProfileCitizenSigning), CSR: csr, RequestID: "req-1"})
	if resp.StatusCode != http.StatusCreated {
		t.Fatalf("issue: %d %s", resp.StatusCode, body)
	}
	var ir IssueResponse
	if err := json.Unmarshal(body, &ir); err != nil || len(ir.Chain) != 2 || !strings.HasPrefix(ir.Certificate, "-----BEGIN CERTIFICATE") {
		t.Fatalf("response %s: %v", body, err)
	}
	if pki.audit.last().Actor != "officer-7" {
		t.Fatalf("caller not recorded: %+v", pki.audit.last())
	}

	// GET the certificate and its status.
	r2, err := http.Get(srv.URL + "/api/v1/certificates/" + strings.ToUpper(ir.Serial))
	if err != nil {
		t.Fatal(err)
	}
	var cr CertificateResponse
	_ = json.NewDecoder(r2.Body).Decode(&cr)
	r2.Body.Close()
	if r2.StatusCode != 200 || cr.Status != "valid" || cr.Certificate != ir.Certificate || cr.Profile != policies.ProfileCitizenSigning {
		t.Fatalf("get: %d %+v", r2.StatusCode, cr)
	}

	// CA certificates, DER.
	for _, name := range []string{"root", "citizen", "organisation", "tsa"} {
		r3, err := http.Get(srv.URL + "/certs/" + name + ".crt")
		if err != nil {
			t.Fatal(err)
		}
		der, _ := io.ReadAll(r3.Body)
		r3.Body.Close()
		want, _ := pki.authority.CACertificate(name)
		if r3.StatusCode != 200 || !bytes.Equal(der, want.Raw) || r3.Header.Get("Content-Type") != "application/pkix-cert" {
			t.Fatalf("/certs/%s.crt: %d", name, r3.StatusCode)
		}
	}
	if r4, _ := http.Get(srv.URL + "/certs/evil.crt"); r4.StatusCode != 404 {
		t.Fatalf("unknown CA: %d", r4.StatusCode)
	}

	// keyInHSM: key made by the service, credential ID returned.
	resp, body = post(t, srv.URL, IssueRequest{Profile: policies.ProfileCitizenSigning, Subject: subjectFor(policies.ProfileCitizenSigning), KeyInHSM: true})
	if resp.StatusCode != http.StatusCreated || !strings.Contains(string(body), `"credentialID":"cred-1"`) {
		t.Fatalf("keyInHSM: %d %s", resp.StatusCode, body)
	}

	rsa1024, _ := rsa.GenerateKey(rand.Reader, 1024)
	badCSR := newCSR(t, p384(t))
	blk, _ := pem.Decode(badCSR)
	blk.Bytes[len(blk.Bytes)-2] ^= 1
	badCSR = pem.EncodeToMemory(blk)
	compromised := p384(t)
	spki, _ := x509.MarshalPKIXPublicKey(compromised.Public())
	pki.store.blocked[sha256.Sum256(spki)] = &KeyBlock{Serial: "0badc0de", BlockedAt: time.Now()}
	withSub := func(mut func(map[string]string)) map[string]string {
		m := subjectFor(policies.ProfileCitizenSigning)
		mut(m)
		return m
	}
	cases := []struct {
		name       string
		body       any
		status     int
		typ, field string
	}{
		{"replayed request ID", IssueRequest{Profile: policies.ProfileCitizenAuth, Subject: subjectFor(policies.ProfileCitizenAuth), CSR: string(newCSR(t, p384(t))), RequestID: "req-1"}, 409, "duplicate-request", ""},
		{"replayed key", IssueRequest{Profile: policies.ProfileCitizenSigning, Subject: subjectFor(policies.ProfileCitizenSigning), CSR: csr}, 409, "duplicate-request", ""},
		{"unknown profile", IssueRequest{Profile: "web", Subject: subjectFor(policies.ProfileCitizenSigning), CSR: csr}, 400, "unknown-profile", ""},
		{"missing field", IssueRequest{Profile: policies.ProfileCitizenSigning, Subject: withSub(func(m map[string]string) { delete(m, "country") }), CSR: csr}, 400, "bad-subject", "country"},
		{"extra field", IssueRequest{Profile: policies.ProfileCitizenSigning, Subject: withSub(func(m map[string]string) { m["nickname"] = "x" }), CSR: csr}, 400, "bad-subject", "nickname"},
		{"civil number", IssueRequest{Profile: policies.ProfileCitizenSigning, Subject: withSub(func(m map[string]string) { m["civilNumber"] = "abc" }), CSR: csr}, 400, "bad-subject", "civilNumber"},
		{"bad CSR signature", IssueRequest{Profile: policies.ProfileCitizenSigning, Subject: subjectFor(policies.ProfileCitizenSigning), CSR: string(badCSR)}, 400, "bad-csr", ""},
		{"compromised key", IssueRequest{Profile: policies.ProfileCitizenAuth, Subject: subjectFor(policies.ProfileCitizenAuth), CSR: string(newCSR(t, compromised))}, 400, "key-compromised", ""},
		{"weak key", IssueRequest{Profile: policies.ProfileCitizenSigning, Subject: subjectFor(policies.ProfileCitizenSigning), CSR: string(newCSR(t, rsa1024))}, 400, "bad-key", ""},
		{"every bad field at once", IssueRequest{Profile: policies.ProfileCitizenSigning, Subject: withSub(func(m map[string]string) {
			m["nickname"] = "x"
			delete(m, "surname")
			m["civilNumber"] = "abc"
			m["email"] = "not an address"
		}), CSR: csr}, 400, "bad-subject", "nickname,surname,civilNumber,email"},
		{"keyInHSM bad subject", IssueRequest{Profile: policies.ProfileCitizenSigning, Subject: withSub(func(m map[string]string) { m["country"] = "ZZ" }), KeyInHSM: true}, 400, "bad-subject", "country"},
		{"unknown JSON field", `{"profile":"citizen-signing","subjet":{}}`, 400, "", ""},
		{"not JSON", `garbage`, 400, "", ""},
		{"non-string subject", `{"profile":"citizen-signing","subject":{"country":1}}`, 400, "", ""},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			intents, certs := pki.store.counts()
			keys := len(kg.keys)
			resp, body := post(t, srv.URL, c.body)
			var p problem.Details
			if err := json.Unmarshal(body, &p); err != nil || resp.StatusCode != c.status || resp.Header.Get("Content-Type") != problem.ContentType {
				t.Fatalf("status %d body %s", resp.StatusCode, body)
			}
			if c.typ != "" && p.Type != "urn:thiqa:problem:"+c.typ {
				t.Fatalf("type %q", p.Type)
			}
			if c.field != "" && strings.Join(p.Errors, ",") != c.field {
				t.Fatalf("errors %v, want fields %s", p.Errors, c.field)
			}
			if c.field != "" {
				if len(p.InvalidParams) != len(p.Errors) {
					t.Fatalf("invalid-params %+v do not match errors %v", p.InvalidParams, p.Errors)
				}
				for i, ip := range p.InvalidParams {
					if ip.Name != p.Errors[i] || ip.Reason == "" || !strings.Contains(p.Detail, ip.Reason) {
						t.Fatalf("invalid-params[%d] = %+v; errors %v; detail %q", i, ip, p.Errors, p.Detail)
					}
				}
			}
			if i2, c2 := pki.store.counts(); i2 != intents || c2 != certs || len(kg.keys) != keys {
				t.Fatal("a refused request changed the store or created a key")
			}
		})
	}
	if r5, _ := http.Get(srv.URL + "/api/v1/certificates/zz"); r5.StatusCode != 400 {
		t.Fatalf("bad serial: %d", r5.StatusCode)
	}
	if r6, _ := http.Get(srv.URL + "/api/v1/certificates/0123456789abcdef"); r6.StatusCode != 404 {
		t.Fatalf("unknown serial: %d", r6.StatusCode)
	}
}

func FuzzParseCSR(f *testing.F) {
	k, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	f.Add(newCSR(f, k))
	f.Add([]byte("-----BEGIN CERTIFICATE REQUEST-----\nMAA=\n-----END CERTIFICATE REQUEST-----\n"))
	f.Fuzz(func(t *testing.T, b []byte) {
		csr, err := parseCSR(b)
		if err == nil && csr.CheckSignature() != nil {
			t.Fatal("accepted a CSR whose signature does not verify")
		}
	})
}

func FuzzIssueHandler(f *testing.F) {
	pki := newTestPKI(f, func(t testing.TB) crypto.Signer { return p384(t) })
	h := NewHandler(pki.authority, HandlerOptions{})
	f.Add(`{"profile":"citizen-signing","subject":{"country":"OM"},"csr":"x"}`)
	f.Add(`{"profile":"organisation-seal","subject":{},"keyInHSM":true}`)
	f.Fuzz(func(t *testing.T, body string) {
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, httptest.NewRequest("POST", "/api/v1/certificates", strings.NewReader(body)))
		if rec.Code == http.StatusCreated || rec.Code >= 500 {
			t.Fatalf("status %d for %q: %s", rec.Code, body, rec.Body)
		}
	})
}

// failingKeyGen cannot make keys (the token is gone).
type failingKeyGen struct{}

func (failingKeyGen) GenerateKey(context.Context, string) (string, crypto.PublicKey, error) {
	return "", nil, errors.New("token removed")
}

func (failingKeyGen) DeleteKey(context.Context, string) error { return nil }

// TestIssueRefusalsBeforeTheAuthorityAreAudited checks that the issuance
// requests the API itself refuses or fails before the authority is asked
// (both csr and keyInHSM, keyInHSM without a key generator, a key the token
// cannot make) leave their audit record naming the caller, as every other
// refusal does.
func TestIssueRefusalsBeforeTheAuthorityAreAudited(t *testing.T) {
	pki := newTestPKI(t, func(t testing.TB) crypto.Signer { return p384(t) })
	sub := subjectFor(policies.ProfileCitizenSigning)
	csr := string(newCSR(t, p384(t)))
	cases := []struct {
		name    string
		kg      KeyGenerator
		req     IssueRequest
		status  int
		outcome string
	}{
		{"csr and keyInHSM", &fakeKeyGen{keys: map[string]crypto.Signer{}},
			IssueRequest{Profile: policies.ProfileCitizenSigning, Subject: sub, CSR: csr, KeyInHSM: true}, http.StatusBadRequest, audit.OutcomeRefused},
		{"keyInHSM unavailable", nil,
			IssueRequest{Profile: policies.ProfileCitizenSigning, Subject: sub, KeyInHSM: true}, http.StatusBadRequest, audit.OutcomeRefused},
		{"key generation fails", failingKeyGen{},
			IssueRequest{Profile: policies.ProfileCitizenSigning, Subject: sub, KeyInHSM: true}, http.StatusInternalServerError, audit.OutcomeFailure},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			srv := httptest.NewServer(NewHandler(pki.authority, HandlerOptions{
				Caller: func(*http.Request) string { return "officer-7" }, KeyGenerator: c.kg,
			}))
			defer srv.Close()
			before := len(pki.audit.entries)
			resp, body := post(t, srv.URL, c.req)
			if resp.StatusCode != c.status {
				t.Fatalf("status %d, want %d: %s", resp.StatusCode, c.status, body)
			}
			if len(pki.audit.entries) != before+1 {
				t.Fatalf("%d audit records for the refusal, want 1", len(pki.audit.entries)-before)
			}
			e := pki.audit.last()
			if e.Actor != "officer-7" || e.Action != string(policies.ActionIssueCertificate) || e.Outcome != c.outcome {
				t.Fatalf("audit record %+v", e)
			}
		})
	}
}

// downStore is a certificate store that cannot be reached.
type downStore struct{ *memStore }

func (downStore) InsertIntent(context.Context, Intent) error {
	return fmt.Errorf("store: recording the intent: %w", outage.Mark(errors.New("connection refused")))
}

// TestIssueStoreOutageIs503: when the database cannot be reached the
// answer is 503 with a Retry-After (a retry may succeed), not 500, and the
// failure is still audited.
func TestIssueStoreOutageIs503(t *testing.T) {
	pki := newTestPKI(t, func(t testing.TB) crypto.Signer { return p384(t) })
	var list []*Issuer
	for _, is := range pki.issuers {
		list = append(list, is)
	}
	profiles, err := policies.DefaultProfiles(policies.DefaultsConfig{})
	if err != nil {
		t.Fatal(err)
	}
	a, err := NewAuthority(AuthorityConfig{Root: pki.root, Issuers: list, Profiles: profiles, Store: downStore{pki.store}, Auditor: pki.audit})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(NewHandler(a, HandlerOptions{Caller: func(*http.Request) string { return "officer-7" }}))
	defer srv.Close()
	resp, body := post(t, srv.URL, IssueRequest{Profile: policies.ProfileCitizenSigning, Subject: subjectFor(policies.ProfileCitizenSigning), CSR: string(newCSR(t, p384(t)))})
	if resp.StatusCode != http.StatusServiceUnavailable || resp.Header.Get("Retry-After") == "" {
		t.Fatalf("status %d, Retry-After %q, want 503 with one: %s", resp.StatusCode, resp.Header.Get("Retry-After"), body)
	}
	var p problem.Details
	if err := json.Unmarshal(body, &p); err != nil || p.Detail != problem.UnavailableDetail {
		t.Fatalf("problem %s (%v)", body, err)
	}
	if e := pki.audit.last(); e.Action != string(policies.ActionIssueCertificate) || e.Outcome != audit.OutcomeFailure {
		t.Fatalf("audit record %+v", e)
	}
}
