package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/thiqa/thiqa/internal/pin"
	"github.com/thiqa/thiqa/internal/problem"
)

// wantCSC checks a CSC API v2 error (section 10.2): the status, the error
// code, error_description naming text, and no RFC 9457 problem members.
func wantCSC(t *testing.T, what string, code int, m map[string]any, status int, errCode, text string) {
	t.Helper()
	desc, _ := m["error_description"].(string)
	if code != status || m["error"] != errCode || !strings.Contains(desc, text) {
		t.Fatalf("%s: got %d %v; want %d error=%q naming %q", what, code, m, status, errCode, text)
	}
	for _, k := range []string{"title", "status", "detail", "type"} {
		if _, ok := m[k]; ok {
			t.Fatalf("%s: CSC error carries the problem member %q: %v", what, k, m)
		}
	}
}

// runCSCShape checks the CSC error shape where the authentication layer
// answers (no token, a bad token) and the v2 success bodies of info,
// credentials/list, credentials/info and credentials/authorize (authData).
// It makes no wrong PIN tries and no signature.
func runCSCShape(t *testing.T, f *signFixture, citizen, other, cred, h string) {
	t.Helper()
	for _, c := range []struct{ name, token, challenge string }{
		{"no token", "", `Bearer realm="thiqa"`},
		{"a bad token", "not-a-jwt", `error="invalid_token"`},
	} {
		for _, path := range []string{"/csc/v2/credentials/list", "/csc/v2/credentials/info", "/csc/v2/credentials/authorize", "/csc/v2/signatures/signHash"} {
			code, hdr, body := f.send(t, path, c.token, "application/json", []byte(`{}`), nil)
			var m map[string]any
			if err := json.Unmarshal(body, &m); err != nil {
				t.Fatalf("%s %s: %d %s", path, c.name, code, body)
			}
			wantCSC(t, path+" with "+c.name, code, m, 401, "invalid_token", "")
			if ch := hdr.Get("WWW-Authenticate"); !strings.Contains(ch, c.challenge) {
				t.Fatalf("%s with %s: WWW-Authenticate %q, want %q", path, c.name, ch, c.challenge)
			}
			if ct := hdr.Get("Content-Type"); ct != "application/json" {
				t.Fatalf("%s with %s: Content-Type %q", path, c.name, ct)
			}
		}
	}
	// The other Thiqa APIs keep RFC 9457 problems.
	code, hdr, body := f.send(t, "/api/v1/sign?level=B-B&credential="+cred, "", "application/pdf", samplePDF(t, 1<<10), nil)
	if code != 401 || hdr.Get("Content-Type") != "application/problem+json" || !strings.Contains(string(body), `"title"`) {
		t.Fatalf("/api/v1/sign without a token: %d %s %s", code, hdr.Get("Content-Type"), body)
	}

	code, m := f.csc(t, "/csc/v2/info", "", map[string]any{})
	if code != 200 || !strings.Contains(fmt.Sprint(m["signAlgorithms"]), "1.2.840.10045.4.3.2") || m["name"] == "" || m["region"] != "OM" {
		t.Fatalf("info: %d %v", code, m)
	}

	code, m = f.csc(t, "/csc/v2/credentials/info", citizen, map[string]any{"credentialID": cred, "certificates": "chain", "certInfo": true, "authInfo": true})
	key, _ := m["key"].(map[string]any)
	cert, _ := m["cert"].(map[string]any)
	auth, _ := m["auth"].(map[string]any)
	certs, _ := cert["certificates"].([]any)
	serial, _ := cert["serialNumber"].(string)
	if code != 200 || m["SCAL"] != "2" || key["status"] != "enabled" || key["curve"] != "1.2.840.10045.3.1.7" || key["len"] != 256.0 ||
		cert["status"] != "valid" || len(certs) < 2 || serial == "" || serial != strings.ToUpper(serial) ||
		!strings.HasSuffix(fmt.Sprint(cert["validTo"]), "Z") || cert["subjectDN"] == nil || cert["issuerDN"] == nil ||
		auth["mode"] != "explicit" || !strings.Contains(fmt.Sprint(auth["objects"]), "id:PIN") || m["multisign"] == nil {
		t.Fatalf("credentials/info: %d %v", code, m)
	}
	code, m = f.csc(t, "/csc/v2/credentials/info", citizen, map[string]any{"credentialID": cred, "certificates": "all"})
	wantCSC(t, "credentials/info with certificates=all", code, m, 400, "invalid_request", "Invalid parameter certificates")
	code, m = f.csc(t, "/csc/v2/credentials/info", other, map[string]any{"credentialID": cred})
	wantCSC(t, "credentials/info of another citizen's credential", code, m, 400, "invalid_request", "Invalid parameter credentialID")

	code, m = f.csc(t, "/csc/v2/credentials/list", citizen, map[string]any{"credentialInfo": true, "certInfo": true, "onlyValid": true})
	infos, _ := m["credentialInfos"].([]any)
	if code != 200 || fmt.Sprint(m["credentialIDs"]) != "["+cred+"]" || m["onlyValid"] != true || len(infos) != 1 ||
		infos[0].(map[string]any)["credentialID"] != cred || !strings.Contains(fmt.Sprint(infos[0]), "status:enabled") {
		t.Fatalf("credentials/list with credentialInfo: %d %v", code, m)
	}
	code, m = f.csc(t, "/csc/v2/credentials/list", citizen, map[string]any{"userID": "87654321"})
	wantCSC(t, "credentials/list with a userID", code, m, 400, "invalid_request", "userID parameter MUST be null")

	authorize := func(body map[string]any) (int, map[string]any) {
		body["credentialID"], body["hashAlgorithmOID"] = cred, "2.16.840.1.101.3.4.2.1"
		return f.csc(t, "/csc/v2/credentials/authorize", citizen, body)
	}
	code, m = authorize(map[string]any{"numSignatures": 0, "hashes": []string{h}, "authData": []map[string]string{{"id": "PIN", "value": "482916"}}})
	wantCSC(t, "authorize with numSignatures 0", code, m, 400, "invalid_request", "Invalid value for parameter numSignatures")
	code, m = authorize(map[string]any{"numSignatures": 1, "hashes": []string{h}})
	wantCSC(t, "authorize without authData", code, m, 400, "invalid_request", "authData")
	code, m = authorize(map[string]any{"numSignatures": 1, "hashes": []string{h}, "authData": []map[string]string{{"id": "PIN", "value": "482916"}}})
	if sad, _ := m["SAD"].(string); code != 200 || sad == "" || m["expiresIn"] == nil {
		t.Fatalf("authorize with authData: %d %v", code, m)
	}
}

func TestCSCClassify(t *testing.T) {
	for _, c := range []struct {
		err    error
		status int
		code   string
	}{
		{errCredentialRefused, 400, "invalid_request"},
		{cscInvalid("Missing (or invalid type) string parameter credentialID", nil), 400, "invalid_request"},
		{&pin.WrongError{Remaining: 3}, 400, "invalid_authentication_data"},
		{&pin.WrongError{Remaining: 0}, 400, "invalid_request"},
		{pin.ErrLocked, 400, "invalid_request"},
		{pin.ErrNotSet, 400, "invalid_request"},
		{refuse(http.StatusUnsupportedMediaType, "the body must be application/json"), 400, "invalid_request"},
		{refuse(http.StatusForbidden, "the certificate of credential x is revoked"), 400, "invalid_request"},
		{&cscRefusal{status: 403, code: cscAccessDenied, spec: "The caller has no citizen identity"}, 403, "access_denied"},
		{errors.New("disk on fire"), 500, "server_error"},
		{context.DeadlineExceeded, 503, "temporarily_unavailable"},
	} {
		st, msg, _ := classify(c.err)
		status, code, desc := cscClassify(c.err, st, msg)
		if status != c.status || code != c.code || desc == "" {
			t.Errorf("%v: %d %s %q, want %d %s", c.err, status, code, desc, c.status, c.code)
		}
	}
}

func TestCSCErrorsMiddleware(t *testing.T) {
	h := cscErrors(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/401":
			w.Header().Set("WWW-Authenticate", `Bearer realm="thiqa", error="invalid_token"`)
			problem.Write(w, problem.Details{Status: 401, Detail: "invalid credentials: token expired"})
		case "/403":
			problem.Write(w, problem.Details{Status: 403, Detail: "the caller's roles do not grant the permission"})
		default:
			writeJSON(w, 200, map[string]string{"SAD": "x"})
		}
	}))
	for _, c := range []struct {
		path, want string
		status     int
	}{
		{"/401", `{"error":"expired_token","error_description":"invalid credentials: token expired"}`, 401},
		{"/403", `{"error":"access_denied","error_description":"the caller's roles do not grant the permission"}`, 403},
		{"/ok", `{"SAD":"x"}`, 200},
	} {
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, httptest.NewRequest("POST", c.path, nil))
		if rec.Code != c.status || strings.TrimSpace(rec.Body.String()) != c.want || rec.Header().Get("Content-Type") != "application/json" {
			t.Errorf("%s: %d %s %q", c.path, rec.Code, rec.Body, rec.Header().Get("Content-Type"))
		}
		if c.status == 401 && rec.Header().Get("WWW-Authenticate") == "" {
			t.Errorf("%s: the challenge was dropped", c.path)
		}
	}
}
