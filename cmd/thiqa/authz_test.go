package main

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"database/sql"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"io"
	"mime/multipart"
	"net/http"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"

	"github.com/thiqa/thiqa/ca"
	"github.com/thiqa/thiqa/identity"
	"github.com/thiqa/thiqa/internal/auth"
	"github.com/thiqa/thiqa/internal/testenv"
	"github.com/thiqa/thiqa/signing"
)

// The authorisation matrix: every non-public endpoint, driven by every
// kind of caller, on SQLite and PostgreSQL. Only the owner or the right
// role gets through; every refusal changes nothing in the store and leaves
// exactly one audit record naming the caller (or, for a caller who did not
// authenticate, the client certificate presented or the peer address).

// azCaller is one kind of caller.
type azCaller struct {
	name   string
	bearer string
	cert   *tls.Certificate
	// subject is the identity of an authenticated caller ("" otherwise);
	// refused says how a caller that did not authenticate is recorded
	// (auth.ActorAnonymous or auth.ActorUnauthenticated).
	subject string
	refused string
	// certSerial names the client certificate of a refused mTLS caller.
	certSerial string
}

// azFixture is a TLS-serving thiqa with mutual TLS, two citizens and two
// agencies, their credentials and client certificates.
type azFixture struct {
	dir, base string
	env       []string
	srv       *server
	roots     *x509.CertPool
	db        *sql.DB
	officer   string
	tokens    map[string]string // subject → token
	idp       *ecdsa.PrivateKey // the test identity provider's key
	clients   map[*tls.Certificate]*http.Client
	// calls numbers the requests of do: each comes from its own client
	// address (X-Forwarded-For through the trusted loopback proxy), and
	// those of callers who do not authenticate keep within the overall
	// budget of recorded refusals (internal/auth refusalbound.go), so that
	// each of their refusals is recorded: refusals is the test's count of
	// that budget at refusalsAt, as the server's token bucket would have
	// it, with a margin (awaitRefusalBudget).
	calls      int
	refusals   float64
	refusalsAt time.Time
}

const (
	azCitizenA = "11111111"
	azCitizenB = "22222222"
	azAgencyX  = "NTROM-1111111"
	azAgencyY  = "NTROM-2222222"
	azTestIdP  = "urn:test:idp"
	azPIN      = "482916"
)

// newAZFixture starts the fixture's server; edits change its thiqa.yaml
// last (base is the server's https URL).
func newAZFixture(t *testing.T, postgres bool, edits ...func(y, base string) string) *azFixture {
	t.Helper()
	f := &azFixture{dir: filepath.Join(t.TempDir(), "data"), tokens: map[string]string{}}
	port := idFreePort(t)
	f.base = "https://127.0.0.1:" + strconv.Itoa(port)
	dsn := ""
	conf := editedConfig(t, f.dir, func(y string) string {
		y = strings.ReplaceAll(y, "127.0.0.1:8080", "127.0.0.1:"+strconv.Itoa(port))
		if postgres {
			y = strings.Replace(y, "driver: sqlite\n  dsn: thiqa.db\n  dsnEnv: \"\"", "driver: postgres\n  dsn: \"\"\n  dsnEnv: THIQA_TEST_DSN", 1)
		}
		return strings.Replace(y, "\nverify:\n", "\nverify:\n  trustedProxies: [127.0.0.1/32]\n", 1)
	})
	if postgres {
		dsn = testenv.PostgresDSN(t)
		f.env = []string{"THIQA_TEST_DSN=" + dsn}
	}
	mustThiqa(t, f.env, "init", "--data", f.dir, "--config", conf)

	// A second token issuer whose key the test holds, to present tokens
	// that are expired, for another audience or signed by an unknown key.
	f.idp, _ = ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err := auth.WriteJWKS(filepath.Join(f.dir, "test-idp.jwks.json"),
		jose.JSONWebKey{Key: &f.idp.PublicKey, KeyID: "idp-1", Algorithm: "ES256", Use: "sig"}); err != nil {
		t.Fatal(err)
	}
	f.roots = writeServerTLS(t, f.dir)
	y := mustRead(t, filepath.Join(f.dir, "thiqa.yaml"))
	old := "  mtls: {}"
	if !strings.Contains(y, old) {
		t.Fatalf("thiqa.yaml lacks %q", old)
	}
	y = strings.Replace(y, old, "    - issuer: "+azTestIdP+"\n      audience: thiqa\n      jwksFile: test-idp.jwks.json\n"+
		"  mtls:\n    clientCAFiles: [ca/citizen.pem, ca/organisation.pem]", 1)
	for _, edit := range edits {
		y = edit(y, f.base)
	}
	writeFile(t, filepath.Join(f.dir, "thiqa.yaml"), y+"tls:\n  certFile: tls/cert.pem\n  keyFile: tls/key.pem\n")

	f.srv = startServerAtEnv(t, f.dir, "127.0.0.1:"+strconv.Itoa(port), f.base, f.env)
	f.officer = f.token(t, "officer-1", "registration-officer")
	var err error
	if postgres {
		f.db, err = sql.Open("pgx", dsn)
	} else {
		f.db, err = sql.Open("sqlite", filepath.Join(f.dir, "thiqa.db"))
	}
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.db.Close() })
	return f
}

// token mints (once) a development token for subject and role.
func (f *azFixture) token(t *testing.T, subject, role string) string {
	t.Helper()
	if tok, ok := f.tokens[subject]; ok {
		return tok
	}
	tok := lastLine(mustThiqa(t, f.env, "token", "--data", f.dir, "--subject", subject, "--role", role).stdout)
	f.tokens[subject] = tok
	return tok
}

// idpToken signs a token of the test issuer with key, changed by edit.
func (f *azFixture) idpToken(t *testing.T, key *ecdsa.PrivateKey, edit func(*jwt.Claims)) string {
	t.Helper()
	now := time.Now()
	c := jwt.Claims{Issuer: azTestIdP, Subject: azCitizenA, Audience: jwt.Audience{"thiqa"}, ID: hex.EncodeToString(randomBytes(8)),
		IssuedAt: jwt.NewNumericDate(now), NotBefore: jwt.NewNumericDate(now), Expiry: jwt.NewNumericDate(now.Add(time.Hour))}
	edit(&c)
	sg, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.ES256, Key: key}, (&jose.SignerOptions{}).WithType("JWT").WithHeader("kid", "idp-1"))
	if err != nil {
		t.Fatal(err)
	}
	tok, err := jwt.Signed(sg).Claims(c).Claims(map[string]any{"roles": []string{"citizen"}}).Serialize()
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

func randomBytes(n int) []byte {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return b
}

// do sends one request as caller.
func (f *azFixture) do(t *testing.T, c azCaller, method, path, ctype string, body []byte, hdr map[string]string) (int, []byte) {
	t.Helper()
	// One client per client certificate, with keep-alives: the server
	// reads the small body of a request it refuses, where a connection
	// closed after the answer could break the client's write.
	client := f.clients[c.cert]
	if client == nil {
		tc := &tls.Config{RootCAs: f.roots}
		if c.cert != nil {
			tc.Certificates = []tls.Certificate{*c.cert}
		}
		client = &http.Client{Timeout: time.Minute, Transport: &http.Transport{TLSClientConfig: tc}}
		if f.clients == nil {
			f.clients = map[*tls.Certificate]*http.Client{}
		}
		f.clients[c.cert] = client
	}
	req, err := http.NewRequest(method, f.base+path, bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if ctype != "" {
		req.Header.Set("Content-Type", ctype)
	}
	if c.bearer != "" {
		req.Header.Set("Authorization", "Bearer "+c.bearer)
	}
	f.calls++
	req.Header.Set("X-Forwarded-For", fmt.Sprintf("198.18.%d.%d", f.calls/250%250, f.calls%250+1))
	if c.refused != "" {
		f.awaitRefusalBudget()
	}
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	resp, err := client.Do(req)
	if err != nil {
		t.Fatalf("%s %s as %s: %v", method, path, c.name, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, b
}

// issue asks for a certificate as the officer.
func (f *azFixture) issue(t *testing.T, req ca.IssueRequest) ca.IssueResponse {
	t.Helper()
	b, _ := json.Marshal(req)
	st, body := f.do(t, azCaller{name: "officer", bearer: f.officer}, http.MethodPost, "/api/v1/certificates", "application/json", b, nil)
	var out ca.IssueResponse
	if st != http.StatusCreated || json.Unmarshal(body, &out) != nil {
		t.Fatalf("issuing %s: %d %s", req.Profile, st, body)
	}
	return out
}

func azCitizen(civil string) map[string]string {
	s := citizenSubject()
	s["civilNumber"] = civil
	return s
}

func azAgency(orgID string) map[string]string {
	s := orgSubject()
	s["organizationIdentifier"] = orgID
	return s
}

// credential issues a key on the token for subject and returns its ID.
func (f *azFixture) credential(t *testing.T, profile string, subject map[string]string) string {
	t.Helper()
	return f.issue(t, ca.IssueRequest{Profile: profile, Subject: subject, KeyInHSM: true}).CredentialID
}

// clientCert issues a certificate for a key the test holds (an ID card, an
// agency's system) and returns it as a TLS client certificate.
func (f *azFixture) clientCert(t *testing.T, profile string, subject map[string]string) (*tls.Certificate, string) {
	t.Helper()
	k, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	der, _ := x509.CreateCertificateRequest(rand.Reader, &x509.CertificateRequest{}, k)
	out := f.issue(t, ca.IssueRequest{Profile: profile, Subject: subject, CSR: string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE REQUEST", Bytes: der}))})
	blk, _ := pem.Decode([]byte(out.Certificate))
	return &tls.Certificate{Certificate: [][]byte{blk.Bytes}, PrivateKey: k}, out.Serial
}

func (f *azFixture) revoke(t *testing.T, serial, reason string) {
	t.Helper()
	st, body := f.do(t, azCaller{name: "officer", bearer: f.officer}, http.MethodPost, "/api/v1/certificates/"+serial+"/revoke",
		"application/json", []byte(`{"reason":"`+reason+`"}`), nil)
	if st != http.StatusOK {
		t.Fatalf("revoke %s: %d %s", serial, st, body)
	}
}

// setPIN sets a credential's signing PIN as its citizen.
func (f *azFixture) setPIN(t *testing.T, citizen, cred string) {
	t.Helper()
	st, body := f.do(t, azCaller{name: citizen, bearer: f.token(t, citizen, "citizen")}, http.MethodPost,
		"/api/v1/credentials/"+cred+"/pin", "application/json", []byte(`{"pin":"`+azPIN+`"}`), nil)
	if st != http.StatusOK && st != http.StatusCreated && st != http.StatusNoContent {
		t.Fatalf("setting the PIN of %s: %d %s", cred, st, body)
	}
}

// resetPIN resets a credential's PIN as the registration officer and
// returns the activation code.
func (f *azFixture) resetPIN(t *testing.T, cred string) string {
	t.Helper()
	st, body := f.do(t, azCaller{name: "officer", bearer: f.officer}, http.MethodPost, "/api/v1/credentials/"+cred+"/pin/reset", "application/json", []byte("{}"), nil)
	var out signing.PINResetResponse
	if st != http.StatusOK || json.Unmarshal(body, &out) != nil || out.ActivationCode == "" {
		t.Fatalf("resetting the PIN of %s: %d %s", cred, st, body)
	}
	return out.ActivationCode
}

// snapshot digests every table of the store but the audit log's, the
// tables background loops write (CRL numbers, the TSA's serial blocks)
// and the migration bookkeeping.
func (f *azFixture) snapshot(t *testing.T) string {
	t.Helper()
	return f.snapshotOf(t, "certificates", "revocations", "signing_credentials", "signing_sads",
		"oidc_clients", "oidc_grants", "oidc_logins", "oidc_mobile_ids", "oidc_assertion_jtis")
}

// snapshotOf digests the rows of tables.
func (f *azFixture) snapshotOf(t *testing.T, tables ...string) string {
	t.Helper()
	h := sha256.New()
	for _, tbl := range tables {
		rows, err := f.db.Query("SELECT * FROM " + tbl)
		if err != nil {
			t.Fatalf("snapshot of %s: %v", tbl, err)
		}
		cols, _ := rows.Columns()
		var lines []string
		for rows.Next() {
			vals := make([]any, len(cols))
			ptrs := make([]any, len(cols))
			for i := range vals {
				ptrs[i] = &vals[i]
			}
			if err := rows.Scan(ptrs...); err != nil {
				t.Fatal(err)
			}
			lines = append(lines, fmt.Sprintf("%v", vals))
		}
		rows.Close()
		slices.Sort(lines)
		fmt.Fprintf(h, "%s:%d\n%s\n", tbl, len(lines), strings.Join(lines, "\n"))
	}
	return hex.EncodeToString(h.Sum(nil))
}

// azRecord is an audit record as the matrix reads it.
type azRecord struct {
	actor, action, outcome string
	details                map[string]any
}

func (f *azFixture) auditSince(t *testing.T, seq int64) ([]azRecord, int64) {
	t.Helper()
	rows, err := f.db.Query(fmt.Sprintf("SELECT seq, actor, action, outcome, details FROM audit_log WHERE seq > %d ORDER BY seq", seq))
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var out []azRecord
	last := seq
	for rows.Next() {
		var r azRecord
		var details string
		if err := rows.Scan(&last, &r.actor, &r.action, &r.outcome, &details); err != nil {
			t.Fatal(err)
		}
		_ = json.Unmarshal([]byte(details), &r.details)
		out = append(out, r)
	}
	return out, last
}

func (f *azFixture) auditHead(t *testing.T) int64 {
	t.Helper()
	var n sql.NullInt64
	if err := f.db.QueryRow("SELECT max(seq) FROM audit_log").Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n.Int64
}

// azRequest is one request of an endpoint, built for a caller.
type azRequest struct {
	method, path, ctype string
	body                []byte
	hdr                 map[string]string
}

// azEndpoint is one protected endpoint of the matrix.
type azEndpoint struct {
	name string
	// allowed says who gets through (the owner or the right role).
	allowed func(c azCaller) bool
	// okStatus is what an allowed caller gets.
	okStatus int
	// build makes the request for c; it may prepare state (a fresh
	// certificate to revoke, a SAD) before the request. It is called for
	// every allowed caller and once for all refused callers.
	build func(t *testing.T, c azCaller) azRequest
}

func TestAuthorisationMatrixOnSQLite(t *testing.T)   { runAuthorisationMatrix(t, false) }
func TestAuthorisationMatrixOnPostgres(t *testing.T) { runAuthorisationMatrix(t, true) }

func runAuthorisationMatrix(t *testing.T, postgres bool) {
	f := newAZFixture(t, postgres)
	// The subjects and what they own.
	credA := f.credential(t, "citizen-signing", azCitizen(azCitizenA))
	credB := f.credential(t, "citizen-signing", azCitizen(azCitizenB))
	sealX := f.credential(t, "organisation-seal", azAgency(azAgencyX))
	f.credential(t, "organisation-seal", azAgency(azAgencyY))
	f.setPIN(t, azCitizenA, credA)
	f.setPIN(t, azCitizenB, credB)
	cardA, cardASerial := f.clientCert(t, "citizen-auth", azCitizen(azCitizenA))
	certX, _ := f.clientCert(t, "organisation-seal", azAgency(azAgencyX))
	lostCard, lostCardSerial := f.clientCert(t, "citizen-auth", azCitizen(azCitizenA))
	oldCertX, oldCertXSerial := f.clientCert(t, "organisation-seal", azAgency(azAgencyX))
	f.revoke(t, lostCardSerial, "keyCompromise")
	f.revoke(t, oldCertXSerial, "superseded")
	stranger, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)

	callers := []azCaller{
		{name: "anonymous", refused: auth.ActorAnonymous},
		{name: "citizen A (token)", bearer: f.token(t, azCitizenA, "citizen"), subject: azCitizenA},
		{name: "citizen A (ID card)", cert: cardA, subject: azCitizenA},
		{name: "citizen B", bearer: f.token(t, azCitizenB, "citizen"), subject: azCitizenB},
		{name: "agency X (token)", bearer: f.token(t, azAgencyX, "agency"), subject: azAgencyX},
		{name: "agency X (certificate)", cert: certX, subject: azAgencyX},
		{name: "agency Y", bearer: f.token(t, azAgencyY, "agency"), subject: azAgencyY},
		{name: "registration officer", bearer: f.officer, subject: "officer-1"},
		{name: "operator", bearer: f.token(t, "operator-1", "operator"), subject: "operator-1"},
		{name: "expired token", bearer: f.idpToken(t, f.idp, func(c *jwt.Claims) {
			c.IssuedAt, c.NotBefore, c.Expiry = jwt.NewNumericDate(time.Now().Add(-3*time.Hour)), jwt.NewNumericDate(time.Now().Add(-3*time.Hour)), jwt.NewNumericDate(time.Now().Add(-2*time.Hour))
		}), refused: auth.ActorUnauthenticated},
		{name: "token signed by an unknown key", bearer: f.idpToken(t, stranger, func(*jwt.Claims) {}), refused: auth.ActorUnauthenticated},
		{name: "token for another audience", bearer: f.idpToken(t, f.idp, func(c *jwt.Claims) { c.Audience = jwt.Audience{"another-service"} }), refused: auth.ActorUnauthenticated},
		{name: "revoked certificate (keyCompromise)", cert: lostCard, refused: auth.ActorUnauthenticated, certSerial: lostCardSerial},
		{name: "revoked certificate (superseded)", cert: oldCertX, refused: auth.ActorUnauthenticated, certSerial: oldCertXSerial},
	}
	// The test issuer's valid token works: the refusals above are for
	// their flaw alone.
	if st, body := f.do(t, azCaller{name: "idp", bearer: f.idpToken(t, f.idp, func(*jwt.Claims) {})}, http.MethodGet, "/api/v1/whoami", "", nil, nil); st != 200 {
		t.Fatalf("a valid token of the test issuer: %d %s", st, body)
	}

	is := func(subjects ...string) func(azCaller) bool {
		return func(c azCaller) bool { return c.subject != "" && slices.Contains(subjects, c.subject) }
	}
	authenticated := func(c azCaller) bool { return c.subject != "" }
	citizens := is(azCitizenA, azCitizenB)
	pdf := samplePDF(t, 4<<10)
	owner := azCaller{name: "citizen A", bearer: f.token(t, azCitizenA, "citizen"), subject: azCitizenA}
	// prepared signs the two-step preparation of pdf as citizen A and
	// authorises its hash with the PIN: what complete needs.
	prepared := func(t *testing.T) (signing.SignPrepareResponse, string) {
		t.Helper()
		st, body := f.do(t, owner, http.MethodPost, "/api/v1/sign/prepare?level=B-B&credential="+credA, "application/pdf", pdf, nil)
		var prep signing.SignPrepareResponse
		if st != 200 || json.Unmarshal(body, &prep) != nil {
			t.Fatalf("prepare: %d %s", st, body)
		}
		return prep, f.authorize(t, owner, credA, prep.Hash)
	}
	// A sealed PDF for POST /api/v1/extend.
	var sealed []byte
	for _, c := range callers {
		if c.subject == azAgencyX && c.bearer != "" {
			var st int
			if st, sealed = f.do(t, c, http.MethodPost, "/api/v1/seal?level=B-B&credential="+sealX, "application/pdf", pdf, nil); st != 200 {
				t.Fatalf("seal for extend: %d %.300s", st, sealed)
			}
		}
	}
	jsonReq := func(path string, v any) azRequest {
		b, _ := json.Marshal(v)
		return azRequest{method: http.MethodPost, path: path, ctype: "application/json", body: b}
	}

	endpoints := []azEndpoint{
		{name: "GET /api/v1/whoami", allowed: authenticated, okStatus: 200, build: func(*testing.T, azCaller) azRequest {
			return azRequest{method: http.MethodGet, path: "/api/v1/whoami"}
		}},
		{name: "POST /api/v1/certificates", allowed: is("officer-1"), okStatus: 201, build: func(t *testing.T, _ azCaller) azRequest {
			return jsonReq("/api/v1/certificates", ca.IssueRequest{Profile: "citizen-auth", Subject: azCitizen(azCitizenB), CSR: newTestCSR(t)})
		}},
		{name: "GET /api/v1/certificates/{serial}", allowed: is("officer-1", "operator-1"), okStatus: 200, build: func(*testing.T, azCaller) azRequest {
			return azRequest{method: http.MethodGet, path: "/api/v1/certificates/" + cardASerial}
		}},
		{name: "GET /api/v1/certificates (search)", allowed: is("officer-1"), okStatus: 200, build: func(*testing.T, azCaller) azRequest {
			return azRequest{method: http.MethodGet, path: "/api/v1/certificates?civilNumber=12345678"}
		}},
		{name: "GET /api/v1/certificates/{serial}/audit", allowed: is("officer-1", "operator-1"), okStatus: 200, build: func(*testing.T, azCaller) azRequest {
			return azRequest{method: http.MethodGet, path: "/api/v1/certificates/" + cardASerial + "/audit"}
		}},
		{name: "POST /api/v1/certificates/{serial}/revoke", allowed: is("officer-1", azCitizenA), okStatus: 200, build: func(t *testing.T, _ azCaller) azRequest {
			// A fresh certificate of citizen A for every caller.
			_, serial := f.clientCert(t, "citizen-auth", azCitizen(azCitizenA))
			return jsonReq("/api/v1/certificates/"+serial+"/revoke", map[string]string{"reason": "affiliationChanged"})
		}},
		{name: "POST /api/v1/certificates/{serial}/renew", allowed: is("officer-1", azCitizenA), okStatus: 201, build: func(t *testing.T, _ azCaller) azRequest {
			// A fresh certificate of citizen A for every caller, renewed with its key.
			_, serial := f.clientCert(t, "citizen-signing", azCitizen(azCitizenA))
			return jsonReq("/api/v1/certificates/"+serial+"/renew", map[string]any{})
		}},
		{name: "GET /api/v1/certificates?expiringWithin=", allowed: is("officer-1"), okStatus: 200, build: func(*testing.T, azCaller) azRequest {
			return azRequest{method: http.MethodGet, path: "/api/v1/certificates?expiringWithin=30d"}
		}},
		{name: "POST /api/v1/enrolments", allowed: is("officer-1"), okStatus: 201, build: func(*testing.T, azCaller) azRequest {
			return jsonReq("/api/v1/enrolments", map[string]any{"profile": "citizen-auth", "subject": azCitizen(azCitizenB), "validity": "72h"})
		}},
		{name: "POST /api/v1/enrolments/{reference}/void", allowed: is("officer-1"), okStatus: 200, build: func(t *testing.T, _ azCaller) azRequest {
			// A fresh enrolment, made by the officer, for every caller.
			req, _ := json.Marshal(map[string]any{"profile": "citizen-auth", "subject": azCitizen(azCitizenB)})
			st, body := f.do(t, azCaller{name: "officer", bearer: f.officer}, http.MethodPost, "/api/v1/enrolments", "application/json", req, nil)
			var created struct{ Reference string }
			if st != http.StatusCreated || json.Unmarshal(body, &created) != nil {
				t.Fatalf("creating an enrolment to void: %d %s", st, body)
			}
			return jsonReq("/api/v1/enrolments/"+created.Reference+"/void", map[string]string{"reason": "authorisation matrix"})
		}},
		{name: "GET /api/v1/me/activity", allowed: citizens, okStatus: 200, build: func(*testing.T, azCaller) azRequest {
			return azRequest{method: http.MethodGet, path: "/api/v1/me/activity"}
		}},
		{name: "GET /api/v1/credentials?owner=self", allowed: is(azCitizenA, azCitizenB, azAgencyX, azAgencyY), okStatus: 200, build: func(*testing.T, azCaller) azRequest {
			return azRequest{method: http.MethodGet, path: "/api/v1/credentials?owner=self"}
		}},
		{name: "POST /api/v1/oidc/clients", allowed: is("operator-1"), okStatus: 201, build: func(*testing.T, azCaller) azRequest {
			return jsonReq("/api/v1/oidc/clients", map[string]any{"name": "Tax portal", "redirectURIs": []string{portalRedirect}, "tlsSubject": "CN=Tax Portal,O=Tax,C=OM"})
		}},
		{name: "GET " + identity.PathMobileList, allowed: citizens, okStatus: 200, build: func(*testing.T, azCaller) azRequest {
			return azRequest{method: http.MethodGet, path: identity.PathMobileList}
		}},
		{name: "POST " + identity.PathMobileApprove, allowed: citizens, build: func(*testing.T, azCaller) azRequest {
			return jsonReq(identity.PathMobileApprove, identity.ApproveRequest{Session: "no-such-session", VerificationCode: "0000", PIN: azPIN})
		}},
		{name: "POST " + identity.PathMobileDenyAll, allowed: citizens, okStatus: 200, build: func(*testing.T, azCaller) azRequest {
			return jsonReq(identity.PathMobileDenyAll, map[string]any{})
		}},
		{name: "POST /api/v1/seal", allowed: is(azAgencyX), okStatus: 200, build: func(*testing.T, azCaller) azRequest {
			return azRequest{method: http.MethodPost, path: "/api/v1/seal?level=B-B&credential=" + sealX, ctype: "application/pdf", body: pdf}
		}},
		{name: "POST /api/v1/seal/batch", allowed: is(azAgencyX), okStatus: 200, build: func(t *testing.T, _ azCaller) azRequest {
			var b bytes.Buffer
			mw := multipart.NewWriter(&b)
			w, _ := mw.CreateFormFile("doc", "a.pdf")
			_, _ = w.Write(pdf)
			_ = mw.Close()
			return azRequest{method: http.MethodPost, path: "/api/v1/seal/batch?level=B-B&credential=" + sealX, ctype: mw.FormDataContentType(), body: b.Bytes()}
		}},
		{name: "POST /api/v1/sign", allowed: is(azCitizenA), okStatus: 200, build: func(*testing.T, azCaller) azRequest {
			return azRequest{method: http.MethodPost, path: "/api/v1/sign?level=B-B&credential=" + credA, ctype: "application/pdf", body: pdf,
				hdr: map[string]string{signing.PINHeader: azPIN}}
		}},
		{name: "POST /api/v1/sign/prepare", allowed: is(azCitizenA), okStatus: 200, build: func(*testing.T, azCaller) azRequest {
			return azRequest{method: http.MethodPost, path: "/api/v1/sign/prepare?level=B-B&credential=" + credA, ctype: "application/pdf", body: pdf}
		}},
		{name: "POST /api/v1/sign/complete", allowed: is(azCitizenA), okStatus: 200, build: func(t *testing.T, _ azCaller) azRequest {
			prep, sad := prepared(t)
			return azRequest{method: http.MethodPost, ctype: "application/pdf", body: pdf, hdr: map[string]string{signing.SADHeader: sad},
				path: fmt.Sprintf("/api/v1/sign/complete?level=B-B&credential=%s&signingTime=%s&placeholder=%d", credA, prep.SigningTime, prep.Placeholder)}
		}},
		{name: "POST /api/v1/credentials/{id}/pin", allowed: is(azCitizenA), okStatus: 201, build: func(t *testing.T, _ azCaller) azRequest {
			// A fresh credential of citizen A, whose PIN is not set yet.
			cred := f.credential(t, "citizen-signing", azCitizen(azCitizenA))
			return jsonReq("/api/v1/credentials/"+cred+"/pin", signing.PINRequest{PIN: azPIN})
		}},
		{name: "POST /api/v1/credentials/{id}/pin/change", allowed: is(azCitizenA), okStatus: 200, build: func(t *testing.T, _ azCaller) azRequest {
			cred := f.credential(t, "citizen-signing", azCitizen(azCitizenA))
			f.setPIN(t, azCitizenA, cred)
			return jsonReq("/api/v1/credentials/"+cred+"/pin/change", signing.PINChangeRequest{Old: azPIN, New: "583920"})
		}},
		{name: "POST /api/v1/credentials/{id}/pin/reset", allowed: is("officer-1"), okStatus: 200, build: func(t *testing.T, _ azCaller) azRequest {
			cred := f.credential(t, "citizen-signing", azCitizen(azCitizenA))
			f.setPIN(t, azCitizenA, cred)
			return jsonReq("/api/v1/credentials/"+cred+"/pin/reset", map[string]any{})
		}},
		{name: "POST /api/v1/credentials/{id}/pin/activate", allowed: is(azCitizenA), okStatus: 200, build: func(t *testing.T, _ azCaller) azRequest {
			cred := f.credential(t, "citizen-signing", azCitizen(azCitizenA))
			return jsonReq("/api/v1/credentials/"+cred+"/pin/activate", signing.PINActivateRequest{ActivationCode: f.resetPIN(t, cred), PIN: "583920"})
		}},
		{name: "POST /api/v1/seal/jades", allowed: is(azAgencyX), okStatus: 200, build: func(*testing.T, azCaller) azRequest {
			return azRequest{method: http.MethodPost, path: "/api/v1/seal/jades?level=B-B&credential=" + sealX, ctype: "application/json", body: []byte(`{"doc":1}`)}
		}},
		{name: "POST /api/v1/extend", allowed: is(azAgencyX, azAgencyY, "operator-1"), okStatus: 200, build: func(*testing.T, azCaller) azRequest {
			return azRequest{method: http.MethodPost, path: "/api/v1/extend?level=B-LT", ctype: "application/pdf", body: sealed}
		}},
		{name: "POST /csc/v2/credentials/list", allowed: citizens, okStatus: 200, build: func(*testing.T, azCaller) azRequest {
			return jsonReq("/csc/v2/credentials/list", map[string]any{})
		}},
		{name: "POST /csc/v2/credentials/info", allowed: is(azCitizenA), okStatus: 200, build: func(*testing.T, azCaller) azRequest {
			return jsonReq("/csc/v2/credentials/info", map[string]any{"credentialID": credA})
		}},
		{name: "POST /csc/v2/credentials/authorize", allowed: is(azCitizenA), okStatus: 200, build: func(*testing.T, azCaller) azRequest {
			return jsonReq("/csc/v2/credentials/authorize", map[string]any{"credentialID": credA, "numSignatures": 1,
				"hashes": []string{base64.StdEncoding.EncodeToString(randomBytes(32))}, "hashAlgorithmOID": "2.16.840.1.101.3.4.2.1", "PIN": azPIN})
		}},
		{name: "POST /csc/v2/signatures/signHash", allowed: is(azCitizenA), okStatus: 200, build: func(t *testing.T, _ azCaller) azRequest {
			h := base64.StdEncoding.EncodeToString(randomBytes(32))
			sad := f.authorize(t, owner, credA, h)
			return jsonReq("/csc/v2/signatures/signHash", map[string]any{"credentialID": credA, "SAD": sad, "hashes": []string{h},
				"hashAlgorithmOID": "2.16.840.1.101.3.4.2.1", "signAlgo": "1.2.840.10045.4.3.2"})
		}},
	}

	for _, ep := range endpoints {
		// Every allowed caller gets a request built for it (fresh state
		// where the endpoint consumes some). The refused callers share one:
		// a refusal must change nothing (the snapshot below proves it did
		// not), so what was fresh for the first refused caller is as fresh
		// for the next, and the HSM keys, PIN hashes and certificates of
		// a dozen more builds per endpoint would prove nothing more.
		var refusedReq *azRequest
		for _, c := range callers {
			allowed := ep.allowed(c)
			var req azRequest
			if allowed || refusedReq == nil {
				req = ep.build(t, c)
				if !allowed {
					refusedReq = &req
				}
			} else {
				req = *refusedReq
			}
			what := ep.name + " as " + c.name
			var before string
			if !allowed {
				before = f.snapshot(t)
			}
			head := f.auditHead(t)
			st, body := f.do(t, c, req.method, req.path, req.ctype, req.body, req.hdr)
			if allowed {
				if (ep.okStatus != 0 && st != ep.okStatus) || st == 401 || st == 403 {
					t.Errorf("%s: %d %.300s, want it allowed (%d)", what, st, body, ep.okStatus)
				}
				continue
			}
			if st < 400 || st >= 500 {
				t.Errorf("%s: %d %.300s, want a refusal", what, st, body)
				continue
			}
			if after := f.snapshot(t); after != before {
				t.Errorf("%s: the refusal (%d) changed the store", what, st)
			}
			recs, _ := f.auditSince(t, head)
			if len(recs) != 1 {
				t.Errorf("%s: %d audit records for one refusal (%d %.200s), want exactly 1: %+v", what, len(recs), st, body, recs)
				continue
			}
			f.checkNamesCaller(t, what, c, recs[0])
		}
	}

	// A citizen's activity holds their own credential's records alone and
	// names no officer (officer-1 issued both credentials).
	for _, c := range callers {
		own, other := credA, credB
		switch c.name {
		case "citizen A (token)":
		case "citizen B":
			own, other = credB, credA
		default:
			continue
		}
		st, body := f.do(t, c, http.MethodGet, "/api/v1/me/activity", "", nil, nil)
		if st != 200 || !strings.Contains(string(body), `"credential":"`+own+`"`) || strings.Contains(string(body), other) ||
			strings.Contains(string(body), "officer-1") || !strings.Contains(string(body), `"by":"you"`) {
			t.Errorf("%s's activity: %d %.2000s", c.name, st, body)
		}
	}
}

// authorize gets a SAD for hash (base64) on cred with the PIN, as c.
func (f *azFixture) authorize(t *testing.T, c azCaller, cred, hash string) string {
	t.Helper()
	b, _ := json.Marshal(map[string]any{"credentialID": cred, "numSignatures": 1, "hashes": []string{hash},
		"hashAlgorithmOID": "2.16.840.1.101.3.4.2.1", "PIN": azPIN})
	st, body := f.do(t, c, http.MethodPost, "/csc/v2/credentials/authorize", "application/json", b, nil)
	var m struct{ SAD string }
	if st != 200 || json.Unmarshal(body, &m) != nil || m.SAD == "" {
		t.Fatalf("authorize: %d %s", st, body)
	}
	return m.SAD
}

// checkNamesCaller checks that the record of a refusal names who was
// refused: the caller's method, subject and roles, or the certificate
// presented, or the peer address.
func (f *azFixture) checkNamesCaller(t *testing.T, what string, c azCaller, r azRecord) {
	t.Helper()
	if r.outcome != "refused" {
		t.Errorf("%s: outcome %q, want refused", what, r.outcome)
	}
	if c.subject != "" {
		caller, _ := r.details["caller"].(map[string]any)
		roles, _ := caller["roles"].([]any)
		if !strings.Contains(r.actor, c.subject) || caller["subject"] != c.subject || caller["method"] == nil || len(roles) == 0 {
			t.Errorf("%s: record %q %v does not name the caller %s (method, subject, roles)", what, r.actor, r.details, c.subject)
		}
		return
	}
	if r.actor != c.refused || r.details["remote"] == nil || r.details["reason"] == nil {
		t.Errorf("%s: record %q %v, want actor %s with the peer and the reason", what, r.actor, r.details, c.refused)
	}
	if c.certSerial != "" {
		cert, _ := r.details["certificate"].(map[string]any)
		if cert["serial"] != c.certSerial || cert["issuer"] == nil || !strings.Contains(fmt.Sprint(r.details["reason"]), "revoked") {
			t.Errorf("%s: record %v does not name the revoked certificate %s and why", what, r.details, c.certSerial)
		}
	}
}

// TestMetricsCarryNoPersonalData: after citizens and agencies have signed
// and sealed, /metrics names no credential, civil number or organisation
// identifier, and a second round by new credentials adds no series.
func TestMetricsCarryNoPersonalData(t *testing.T) {
	f := newAZFixture(t, false)
	pdf := samplePDF(t, 4<<10)
	var personal []string
	round := func(n int) {
		t.Helper()
		civil, org := fmt.Sprintf("3%07d", n), fmt.Sprintf("NTROM-3%06d", n)
		cred := f.credential(t, "citizen-signing", azCitizen(civil))
		seal := f.credential(t, "organisation-seal", azAgency(org))
		f.setPIN(t, civil, cred)
		citizen := azCaller{name: "citizen", bearer: f.token(t, civil, "citizen"), subject: civil}
		agency := azCaller{name: "agency", bearer: f.token(t, org, "agency"), subject: org}
		for _, level := range []string{"B-B", "B-T"} {
			if st, body := f.do(t, citizen, http.MethodPost, "/api/v1/sign?level="+level+"&credential="+cred, "application/pdf", pdf,
				map[string]string{signing.PINHeader: azPIN}); st != 200 {
				t.Fatalf("sign: %d %.300s", st, body)
			}
			if st, body := f.do(t, agency, http.MethodPost, "/api/v1/seal?level="+level+"&credential="+seal, "application/pdf", pdf, nil); st != 200 {
				t.Fatalf("seal: %d %.300s", st, body)
			}
		}
		h := base64.StdEncoding.EncodeToString(randomBytes(32))
		b, _ := json.Marshal(map[string]any{"credentialID": cred, "SAD": f.authorize(t, citizen, cred, h), "hashes": []string{h},
			"hashAlgorithmOID": "2.16.840.1.101.3.4.2.1", "signAlgo": "1.2.840.10045.4.3.2"})
		if st, body := f.do(t, citizen, http.MethodPost, "/csc/v2/signatures/signHash", "application/json", b, nil); st != 200 {
			t.Fatalf("signHash: %d %s", st, body)
		}
		// A refusal too: another agency's credential.
		if st, _ := f.do(t, agency, http.MethodPost, "/api/v1/seal?level=B-B&credential="+cred, "application/pdf", pdf, nil); st != 403 {
			t.Fatalf("sealing with a citizen's credential: %d", st)
		}
		personal = append(personal, civil, org, cred, seal)
	}
	scrape := func() map[string]bool {
		t.Helper()
		st, body := f.do(t, azCaller{name: "scraper"}, http.MethodGet, "/metrics", "", nil, nil)
		if st != 200 {
			t.Fatalf("/metrics: %d", st)
		}
		series := map[string]bool{}
		for _, line := range strings.Split(string(body), "\n") {
			if line == "" || line[0] == '#' {
				continue
			}
			// The series (name and labels), not its value: a sample value
			// may happen to hold the same digits as a civil number.
			name := line[:strings.LastIndexByte(line, ' ')]
			for _, p := range personal {
				if strings.Contains(name, p) {
					t.Errorf("/metrics names %q: %s", p, line)
				}
			}
			if !strings.HasPrefix(line, "thiqa_") {
				continue
			}
			for _, family := range []string{"thiqa_hsm_", "thiqa_signing_", "thiqa_auth_", "thiqa_audit_records"} {
				if strings.HasPrefix(name, family) {
					series[name] = true
				}
			}
		}
		return series
	}
	round(1)
	first := scrape()
	if len(first) == 0 {
		t.Fatal("no signing series on /metrics")
	}
	for n := 2; n <= 4; n++ {
		round(n)
	}
	later := scrape()
	for s := range later {
		if !first[s] {
			t.Errorf("a series appeared with more credentials: %s", s)
		}
	}
	if st, body := f.do(t, azCaller{name: "scraper"}, http.MethodGet, "/metrics", "", nil, nil); st != 200 ||
		!strings.Contains(string(body), `thiqa_hsm_signatures_total{key="citizen-signing",result="ok"}`) ||
		!strings.Contains(string(body), `thiqa_hsm_signatures_total{key="organisation-seal",result="ok"}`) ||
		!strings.Contains(string(body), "thiqa_development_issuer_enabled 1") {
		t.Fatalf("/metrics lacks the per-role key series or the development issuer gauge:\n%.2000s", body)
	}
}

// TestMetricsPlacementAndDevelopmentIssuer: metrics.listen moves /metrics
// off the main listener, metrics.requireRole makes scrapers authenticate,
// and production: true refuses a development token issuer.
func TestMetricsPlacementAndDevelopmentIssuer(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "data")
	initData(t, dir)
	conf := filepath.Join(dir, "thiqa.yaml")
	y := mustRead(t, conf)
	if !strings.Contains(y, "development: true") {
		t.Fatalf("init did not mark the development issuer:\n%s", y)
	}
	metricsAddr := "127.0.0.1:" + freePort(t)
	writeFile(t, conf, y+"metrics:\n  listen: "+metricsAddr+"\n  requireRole: operator\n")
	srv := startServer(t, dir, nil)
	if !strings.Contains(srv.stderr.String(), "development token issuer is trusted") {
		t.Errorf("no warning about the development issuer:\n%s", srv.stderr.String())
	}
	if code, _, _ := srv.get(t, "/metrics", ""); code != http.StatusNotFound {
		t.Fatalf("/metrics on the main listener: %d, want 404", code)
	}
	metrics := &server{base: "http://" + metricsAddr}
	operator := lastLine(mustThiqa(t, nil, "token", "--data", dir, "--subject", "ops-1", "--role", "operator").stdout)
	citizen := lastLine(mustThiqa(t, nil, "token", "--data", dir, "--subject", "12345678", "--role", "citizen").stdout)
	if code, _, _ := metrics.get(t, "/metrics", ""); code != http.StatusUnauthorized {
		t.Fatalf("/metrics without credentials: %d, want 401", code)
	}
	if code, _, _ := metrics.get(t, "/metrics", citizen); code != http.StatusForbidden {
		t.Fatalf("/metrics as a citizen: %d, want 403", code)
	}
	code, _, body := metrics.get(t, "/metrics", operator)
	if code != 200 || !strings.Contains(string(body), "thiqa_development_issuer_enabled 1") {
		t.Fatalf("/metrics as the operator: %d %.500s", code, body)
	}
	srv.stop(t)
	if n := countAudit(t, filepath.Join(dir, "thiqa.db"), "metrics.read"); n != 2 {
		t.Fatalf("%d refused metrics reads audited, want 2", n)
	}

	// production: true with the development issuer: serve and token refuse.
	writeFile(t, conf, "production: true\n"+y)
	r := thiqa(t, nil, "serve", "--data", dir, "--addr", "127.0.0.1:0")
	if line := errorLine(t, r); r.code == 0 || !strings.Contains(line, "development token issuer") {
		t.Fatalf("serve in production with a development issuer: exit %d, %q", r.code, line)
	}
	r = thiqa(t, nil, "token", "--data", dir, "--subject", "x", "--role", "operator")
	if line := errorLine(t, r); r.code == 0 || !strings.Contains(line, "production") {
		t.Fatalf("token in production: exit %d, %q", r.code, line)
	}
}
