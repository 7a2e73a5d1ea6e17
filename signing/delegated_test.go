package signing_test

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"

	"github.com/thiqa/thiqa/internal/auth"
	"github.com/thiqa/thiqa/internal/pin"
	"github.com/thiqa/thiqa/policies"
	"github.com/thiqa/thiqa/signing"
	"github.com/thiqa/thiqa/signing/csc"
	"github.com/thiqa/thiqa/store/storetest"
)

// testDelegatedIssuer is the issuer of the world's delegated access tokens.
const testDelegatedIssuer = "https://id.test.example"

// delegated mints an access token of the world's delegated issuer for the
// citizen with grant g (RFC 9068, as the digital ID issues them).
func (w *world) delegated(t *testing.T, citizen string, g auth.Grant) string {
	t.Helper()
	s, err := jose.NewSigner(jose.SigningKey{Algorithm: w.idp.Algorithm(), Key: w.idp}, (&jose.SignerOptions{}).WithType("at+jwt"))
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	tok, err := jwt.Signed(s).Claims(struct {
		jwt.Claims
		auth.Grant
	}{jwt.Claims{Issuer: testDelegatedIssuer, Subject: citizen, Audience: jwt.Audience{w.srv.URL + "/csc/v2"},
		IssuedAt: jwt.NewNumericDate(now), Expiry: jwt.NewNumericDate(now.Add(5 * time.Minute)), ID: fmt.Sprint(now.UnixNano())}, g}).Serialize()
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

// credentialToken activates cred for exactly hashes as the authorization
// server does after the PIN, and returns the access token carrying it.
func (w *world) credentialToken(t *testing.T, citizen, cred string, hashes ...[]byte) string {
	t.Helper()
	az := csc.CredentialAuthorization{Citizen: citizen, CredentialID: cred, Hash: crypto.SHA256, Hashes: hashes, Client: "oidc-app"}
	if err := w.api.CheckPIN(context.Background(), az, testPIN); err != nil {
		t.Fatal(err)
	}
	sad, _, err := w.api.Activate(context.Background(), az)
	if err != nil {
		t.Fatal(err)
	}
	g := auth.Grant{ClientID: "oidc-app", Scope: auth.ScopeCredential, CredentialID: cred, NumSignatures: len(hashes),
		HashAlgorithmOID: "2.16.840.1.101.3.4.2.1", SAD: sad}
	for _, h := range hashes {
		g.Hashes = append(g.Hashes, base64.RawURLEncoding.EncodeToString(h))
	}
	return w.delegated(t, citizen, g)
}

// TestDelegatedSigning: access tokens the digital ID issues for the CSC
// API (scope service or credential) reach the signing routes for their
// citizen only; a credential token signs exactly its hashes, once, through
// signHash or sign/complete, and nothing else.
func TestDelegatedSigning(t *testing.T) {
	w := newWorld(t, storetest.Dialects()[0], worldOptions{})
	ctx := context.Background()
	const civil, other = "12345678", "87654321"
	own := w.token(t, civil, policies.RoleCitizen)
	cred, cert := w.credential(t, policies.ProfileCitizenSigning, citizenSubject())
	otherSubject := citizenSubject()
	otherSubject["civilNumber"] = other
	otherCred, _ := w.credential(t, policies.ProfileCitizenSigning, otherSubject)
	for _, c := range []struct{ citizen, cred string }{{civil, cred}, {other, otherCred}} {
		if code, m := w.csc(t, "/api/v1/credentials/"+c.cred+"/pin", w.token(t, c.citizen, policies.RoleCitizen), signing.PINRequest{PIN: testPIN}); code != 201 {
			t.Fatalf("set PIN: %d %v", code, m)
		}
	}
	digest := func(s string) []byte { h := sha256.Sum256([]byte(s)); return h[:] }
	b64 := base64.StdEncoding.EncodeToString
	signHash := func(token, credID, sad string, hashes ...[]byte) (int, map[string]any) {
		body := map[string]any{"credentialID": credID, "hashAlgorithmOID": "2.16.840.1.101.3.4.2.1", "signAlgo": "1.2.840.10045.4.3.2"}
		var hs []string
		for _, h := range hashes {
			hs = append(hs, b64(h))
		}
		body["hashes"] = hs
		if sad != "" {
			body["SAD"] = sad
		}
		return w.csc(t, "/csc/v2/signatures/signHash", token, body)
	}

	// info announces the authorization server.
	if code, m := w.csc(t, "/csc/v2/info", "", map[string]any{}); code != 200 || m["oauth2"] != testDelegatedIssuer+"/csc/v2" ||
		!strings.Contains(fmt.Sprint(m["authType"]), "oauth2code") || !strings.Contains(fmt.Sprint(m["methods"]), "oauth2/token") {
		t.Fatalf("info: %d %v", code, m)
	}

	// The authorization server's checks: credential, PIN (audited).
	if err := w.api.CheckCredential(ctx, civil, cred); err != nil {
		t.Fatalf("own credential: %v", err)
	}
	if err := w.api.CheckCredential(ctx, civil, otherCred); !csc.Unusable(err) {
		t.Fatalf("another citizen's credential: %v", err)
	}
	var we *pin.WrongError
	az := csc.CredentialAuthorization{Citizen: civil, CredentialID: cred, Hash: crypto.SHA256, Hashes: [][]byte{digest("x")}, Client: "oidc-app"}
	if err := w.api.CheckPIN(ctx, az, "000000"); !errors.As(err, &we) {
		t.Fatalf("wrong PIN: %v", err)
	}
	if n := len(w.records(t, signing.ActionAuthorize, "refused", civil)); n != 1 {
		t.Fatalf("%d refused PIN checks audited, want 1", n)
	}

	// A service token: the citizen's own credentials, PIN and SAD as ever.
	svc := w.delegated(t, civil, auth.Grant{ClientID: "oidc-app", Scope: auth.ScopeService})
	if code, m := w.csc(t, "/csc/v2/credentials/list", svc, map[string]any{}); code != 200 || fmt.Sprint(m["credentialIDs"]) != "["+cred+"]" {
		t.Fatalf("list with a service token: %d %v", code, m)
	}
	h1 := digest("service")
	_, m := w.csc(t, "/csc/v2/credentials/authorize", svc, map[string]any{"credentialID": cred, "numSignatures": 1, "hashes": []string{b64(h1)},
		"hashAlgorithmOID": "2.16.840.1.101.3.4.2.1", "authData": []map[string]string{{"id": "PIN", "value": testPIN}}})
	if code, m := signHash(svc, cred, fmt.Sprint(m["SAD"]), h1); code != 200 {
		t.Fatalf("signHash with a service token: %d %v", code, m)
	}
	if code, m := w.csc(t, "/csc/v2/credentials/info", svc, map[string]any{"credentialID": otherCred}); code != 400 || m["error"] != "invalid_request" {
		t.Fatalf("another citizen's credential with a service token: %d %v", code, m)
	}
	// Only the signing action: the PIN route is the citizen's alone.
	code, _, body := w.send(t, "/api/v1/credentials/"+cred+"/pin", svc, "application/json", []byte(`{"pin":"111111"}`), nil)
	wantStatus(t, "PIN with a service token", code, body, http.StatusForbidden, "delegated access token")

	// A credential token: exactly its hashes, once.
	h2, h3 := digest("doc 2"), digest("doc 3")
	ct := w.credentialToken(t, civil, cred, h2, h3)
	for _, c := range []struct {
		name   string
		credID string
		sad    string
		hashes [][]byte
		status int
		code   string
		text   string
	}{
		{"another hash", cred, "", [][]byte{h2, digest("other")}, 400, "invalid_request", "Hash is not authorized by the access token"},
		{"another credential", otherCred, "", [][]byte{h2}, 400, "invalid_request", "Invalid parameter credentialID"},
		{"another SAD", cred, "not-the-tokens", [][]byte{h2}, 400, "invalid_request", "Invalid parameter SAD"},
	} {
		code, m := signHash(ct, c.credID, c.sad, c.hashes...)
		wantCSC(t, "credential token, "+c.name, code, m, c.status, c.code, c.text)
	}
	code, m = signHash(ct, cred, "", h3, h2)
	sigs, _ := m["signatures"].([]any)
	if code != 200 || len(sigs) != 2 {
		t.Fatalf("signHash with the credential token: %d %v", code, m)
	}
	for i, h := range [][]byte{h3, h2} {
		sig, _ := base64.StdEncoding.DecodeString(sigs[i].(string))
		if !ecdsa.VerifyASN1(cert.PublicKey.(*ecdsa.PublicKey), h, sig) {
			t.Fatalf("signature %d does not verify", i)
		}
	}
	code, m = signHash(ct, cred, "", h2)
	wantCSC(t, "credential token used again", code, m, 400, "invalid_request", "already used")
	for _, path := range []string{"/csc/v2/credentials/list", "/csc/v2/credentials/info", "/csc/v2/credentials/authorize"} {
		code, m := w.csc(t, path, ct, map[string]any{"credentialID": cred})
		wantCSC(t, path+" with a credential token", code, m, 403, "access_denied", "scope credential")
	}
	pdf := samplePDF(t, 4<<10)
	code, _, body = w.send(t, "/api/v1/sign?level=B-B&credential="+cred, ct, "application/pdf", pdf, map[string]string{signing.PINHeader: testPIN})
	wantStatus(t, "one-step sign with a credential token", code, body, http.StatusForbidden, "scope credential")

	// Two steps: prepare with the citizen's token, complete with a
	// credential token for that very hash and no X-Thiqa-SAD, once.
	code, _, body = w.send(t, "/api/v1/sign/prepare?level=B-B&credential="+cred, own, "application/pdf", pdf, nil)
	var prep signing.SignPrepareResponse
	if code != 200 || json.Unmarshal(body, &prep) != nil {
		t.Fatalf("prepare: %d %s", code, body)
	}
	dtbs, _ := base64.StdEncoding.DecodeString(prep.Hash)
	complete := fmt.Sprintf("/api/v1/sign/complete?level=B-B&credential=%s&signingTime=%s&placeholder=%d", cred, prep.SigningTime, prep.Placeholder)
	wrong := w.credentialToken(t, civil, cred, digest("not this document"))
	code, _, body = w.send(t, complete, wrong, "application/pdf", pdf, nil)
	wantStatus(t, "complete with a token for another hash", code, body, http.StatusForbidden, "")
	code, _, body = w.send(t, "/api/v1/sign/prepare?level=B-B&credential="+cred, wrong, "application/pdf", pdf, nil)
	wantStatus(t, "prepare with a credential token", code, body, http.StatusForbidden, "scope credential")
	ct2 := w.credentialToken(t, civil, cred, dtbs)
	code, _, body = w.send(t, complete, ct2, "application/pdf", pdf, nil)
	if code != 200 || !strings.HasPrefix(string(body), "%PDF") {
		t.Fatalf("complete with the credential token: %d %.300s", code, body)
	}
	w.checkPDF(t, "delegated.pdf", body, "citizen", "B-B")
	code, _, body = w.send(t, complete, ct2, "application/pdf", pdf, nil)
	wantStatus(t, "complete with the credential token again", code, body, http.StatusForbidden, "")

	// Every signHash success names the client it was delegated to.
	for _, r := range w.records(t, signing.ActionSignHash, "success", civil) {
		if !strings.Contains(string(r.Details), `"client":"oidc-app"`) {
			t.Fatalf("a delegated signHash record without its client: %s", r.Details)
		}
	}
	w.verifyAudit(t)
}
