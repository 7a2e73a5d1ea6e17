package main

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"

	"github.com/thiqa/thiqa/ca"
	"github.com/thiqa/thiqa/identity"
	"github.com/thiqa/thiqa/internal/testenv"
)

// TestDigitalIDTwoInstancesOnPostgres: two `thiqa serve` instances over
// one PostgreSQL database and one token act as one provider: a login
// started on one instance is approved, completed and redeemed on the other.
func TestDigitalIDTwoInstancesOnPostgres(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "data")
	env := []string{"THIQA_TEST_DSN=" + testenv.PostgresDSN(t)}
	const issuer = "https://id.example.om"
	conf := editedConfig(t, dir, func(y string) string {
		y = strings.Replace(y, "driver: sqlite\n  dsn: thiqa.db\n  dsnEnv: \"\"", "driver: postgres\n  dsn: \"\"\n  dsnEnv: THIQA_TEST_DSN", 1)
		return strings.Replace(y, "object=oidc-token-signer\n  issuer: \"\"", "object=oidc-token-signer\n  issuer: "+issuer, 1)
	})
	mustThiqa(t, env, "init", "--data", dir, "--config", conf)
	a, b := startServer(t, dir, env), startServer(t, dir, env)
	officer := lastLine(mustThiqa(t, env, "token", "--data", dir, "--subject", "officer-2", "--role", "registration-officer").stdout)

	st, body := a.post(t, "/api/v1/certificates", officer, ca.IssueRequest{Profile: "citizen-auth", Subject: citizenSubject(), KeyInHSM: true})
	var mob ca.IssueResponse
	if st != http.StatusCreated || json.Unmarshal(body, &mob) != nil || mob.CredentialID == "" {
		t.Fatalf("issue: %d %s", st, body)
	}
	pinFile := filepath.Join(t.TempDir(), "pin")
	writeFile(t, pinFile, "864209")
	mustThiqa(t, env, "oidc", "mobile", "enrol", "--data", dir, "--credential", mob.CredentialID, "--pin-file", pinFile)
	k, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	set, _ := json.Marshal(jose.JSONWebKeySet{Keys: []jose.JSONWebKey{{Key: &k.PublicKey, KeyID: "k", Algorithm: "ES256", Use: "sig"}}})
	jf := filepath.Join(t.TempDir(), "jwks.json")
	writeFile(t, jf, string(set))
	clientID := lastLine(mustThiqa(t, env, "oidc", "client", "add", "--data", dir, "--name", "Portal", "--redirect-uri", portalRedirect, "--jwks-file", jf, "--allow-civil-number").stdout)

	hc := &http.Client{Timeout: time.Minute, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	send := func(s *server, method, path, ctype, body, bearer string) (int, string, http.Header) {
		t.Helper()
		req, _ := http.NewRequest(method, s.base+path, strings.NewReader(body))
		if ctype != "" {
			req.Header.Set("Content-Type", ctype)
		}
		if bearer != "" {
			req.Header.Set("Authorization", "Bearer "+bearer)
		}
		resp, err := hc.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		raw, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(raw), resp.Header
	}
	form := url.Values{"client_id": {clientID}, "redirect_uri": {portalRedirect}, "response_type": {"code"}, "scope": {"openid profile"},
		"state": {"pg"}, "nonce": {"n"}, "code_challenge": {"E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"}, "code_challenge_method": {"S256"},
		"civil_number": {"12345678"}}
	st2, page, _ := send(a, http.MethodPost, identity.PathAuthorize, "application/x-www-form-urlencoded", form.Encode(), "")
	sess, key := reLoginSession.FindStringSubmatch(page), reLoginKey.FindStringSubmatch(page)
	if st2 != 200 || sess == nil || key == nil {
		t.Fatalf("authorize on A: %d %s", st2, page)
	}
	// The phone side serves the citizen's own token only, on either instance.
	phone := lastLine(mustThiqa(t, env, "token", "--data", dir, "--subject", "12345678", "--role", "citizen").stdout)
	if st, out, _ := send(b, http.MethodGet, identity.PathMobileList+"?civil_number=12345678", "", "", ""); st != http.StatusUnauthorized {
		t.Fatalf("pending on B without credentials: %d %s", st, out)
	}
	_, list, _ := send(b, http.MethodGet, identity.PathMobileList, "", "", phone)
	var pend []identity.PendingSession
	if json.Unmarshal([]byte(list), &pend) != nil || len(pend) != 1 || pend[0].Session != sess[1] {
		t.Fatalf("pending on B: %s", list)
	}
	ab, _ := json.Marshal(identity.ApproveRequest{Session: sess[1], VerificationCode: pend[0].VerificationCode, PIN: "864209"})
	if st, out, _ := send(b, http.MethodPost, identity.PathMobileApprove, "application/json", string(ab), ""); st != http.StatusUnauthorized {
		t.Fatalf("approve on B without credentials: %d %s", st, out)
	}
	if st, out, _ := send(b, http.MethodPost, identity.PathMobileApprove, "application/json", string(ab), phone); st != 200 {
		t.Fatalf("approve on B: %d %s", st, out)
	}
	st3, _, h := send(a, http.MethodPost, identity.PathComplete, "application/x-www-form-urlencoded", url.Values{"login": {sess[1]}, "key": {key[1]}}.Encode(), "")
	loc, _ := url.Parse(h.Get("Location"))
	if st3 != http.StatusSeeOther || loc.Query().Get("code") == "" || loc.Query().Get("iss") != issuer {
		t.Fatalf("complete on A: %d %s", st3, h.Get("Location"))
	}
	signer, _ := jose.NewSigner(jose.SigningKey{Algorithm: jose.ES256, Key: jose.JSONWebKey{Key: k, KeyID: "k"}}, nil)
	assertion := func() string {
		now := time.Now()
		s, _ := jwt.Signed(signer).Claims(jwt.Claims{Issuer: clientID, Subject: clientID, Audience: jwt.Audience{issuer + identity.PathToken},
			Expiry: jwt.NewNumericDate(now.Add(time.Minute)), ID: now.Format(time.RFC3339Nano)}).Serialize()
		return s
	}
	tf := url.Values{"grant_type": {"authorization_code"}, "code": {loc.Query().Get("code")}, "redirect_uri": {portalRedirect},
		"code_verifier":         {"dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk"},
		"client_assertion_type": {"urn:ietf:params:oauth:client-assertion-type:jwt-bearer"}, "client_assertion": {assertion()}}
	st4, tokBody, _ := send(b, http.MethodPost, identity.PathToken, "application/x-www-form-urlencoded", tf.Encode(), "")
	var tr identity.TokenResponse
	if st4 != 200 || json.Unmarshal([]byte(tokBody), &tr) != nil {
		t.Fatalf("token on B: %d %s", st4, tokBody)
	}
	_, jwksBody, _ := send(a, http.MethodGet, identity.PathJWKS, "", "", "")
	var pub jose.JSONWebKeySet
	if err := json.Unmarshal([]byte(jwksBody), &pub); err != nil || len(pub.Keys) != 1 {
		t.Fatalf("jwks: %s", jwksBody)
	}
	idt, err := jwt.ParseSigned(tr.IDToken, []jose.SignatureAlgorithm{jose.ES256})
	if err != nil {
		t.Fatal(err)
	}
	var cl jwt.Claims
	if err := idt.Claims(pub.Keys[0].Key, &cl); err != nil || cl.Subject != "12345678" || cl.Issuer != issuer {
		t.Fatalf("ID token: %+v %v", cl, err)
	}
	if st, _, _ := send(a, http.MethodGet, identity.PathUserinfo, "", "", tr.AccessToken); st != 200 {
		t.Fatalf("userinfo on A: %d", st)
	}
	// The code reused on A revokes what B issued.
	tf.Set("client_assertion", assertion())
	if st, out, _ := send(a, http.MethodPost, identity.PathToken, "application/x-www-form-urlencoded", tf.Encode(), ""); st != 400 || !strings.Contains(out, "invalid_grant") {
		t.Fatalf("reuse on A: %d %s", st, out)
	}
	if st, _, _ := send(b, http.MethodGet, identity.PathUserinfo, "", "", tr.AccessToken); st != 401 {
		t.Fatalf("userinfo on B after reuse: %d", st)
	}
}
