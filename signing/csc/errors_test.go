package csc

import (
	"context"
	"crypto"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/thiqa/thiqa/internal/auth"
	"github.com/thiqa/thiqa/internal/outage"
	"github.com/thiqa/thiqa/internal/pin"
	"github.com/thiqa/thiqa/internal/problem"
	"github.com/thiqa/thiqa/signing"
)

// TestClassify: CSC error codes and descriptions (the specification's
// words first), and the reason its audit record gives.
func TestClassify(t *testing.T) {
	const lockedDetail = "the signing PIN is locked after too many wrong tries; a registration officer can reset it (POST /api/v1/credentials/{id}/pin/reset)"
	for _, c := range []struct {
		err          error
		status       int
		code         string
		desc, reason string
	}{
		{signing.ErrCredentialRefused, 400, "invalid_request", "Invalid parameter credentialID: credential not found or not yours", "credential not found or not yours"},
		{invalid("Missing (or invalid type) string parameter credentialID", nil), 400, "invalid_request",
			"Missing (or invalid type) string parameter credentialID", "Missing (or invalid type) string parameter credentialID"},
		{invalid("Numbers of signatures is too high", errors.New("at most 100 (multisign)")), 400, "invalid_request",
			"Numbers of signatures is too high: at most 100 (multisign)", "Numbers of signatures is too high: at most 100 (multisign)"},
		{invalid("The signing certificate is not valid", signing.Refuse(signing.ErrCertificateRevoked, "the certificate of credential x is revoked")), 400, "invalid_request",
			"The signing certificate is not valid: the certificate of credential x is revoked", "the certificate of credential x is revoked"},
		{invalid("Invalid parameter SAD", signing.ErrSADInvalid), 400, "invalid_request",
			"Invalid parameter SAD: the SAD is invalid, expired, already used or for another credential", "Invalid parameter SAD: the SAD is invalid, expired, already used or for another credential"},
		{invalid("Hash is not authorized by the SAD", &signing.SADError{Reason: "hashes[0] was not authorised by the SAD"}), 400, "invalid_request",
			"Hash is not authorized by the SAD: hashes[0] was not authorised by the SAD", "Hash is not authorized by the SAD: hashes[0] was not authorised by the SAD"},
		{&pin.WrongError{Remaining: 3}, 400, "invalid_authentication_data", "The authentication data is invalid: pin: wrong PIN (3 tries left)", "pin: wrong PIN (3 tries left)"},
		{&pin.WrongError{Remaining: 0}, 400, "invalid_request", "Credential locked: " + lockedDetail, lockedDetail},
		{pin.ErrLocked, 400, "invalid_request", "Credential locked: ", ""},
		{pin.ErrNotSet, 400, "invalid_request", "The credential identified by credentialID is disabled: no signing PIN", "no signing PIN"},
		{signing.Refuse(signing.ErrUnsupportedMediaType, "the body must be application/json"), 400, "invalid_request", "the body must be application/json", "the body must be application/json"},
		{signing.Refuse(signing.ErrCertificateRevoked, "the certificate of credential x is revoked"), 400, "invalid_request", "revoked", "revoked"},
		{signing.Refuse(signing.ErrNoIdentity, "The caller has no citizen identity"), 403, "access_denied", "The caller has no citizen identity", "The caller has no citizen identity"},
		{errors.New("disk on fire"), 500, "server_error", "signing failed", "signing failed"},
		{context.DeadlineExceeded, 503, "temporarily_unavailable", "timed out", "timed out"},
		{fmt.Errorf("%w: %w", signing.ErrAudit, outage.Mark(errors.New("connection refused"))), 503, "temporarily_unavailable", "temporarily unavailable", "temporarily unavailable"},
	} {
		status, code, desc, reason, _ := classify(c.err)
		if status != c.status || code != c.code || !strings.Contains(desc, c.desc) || !strings.Contains(reason, c.reason) {
			t.Errorf("%v: %d %s %q (reason %q), want %d %s %q (reason %q)", c.err, status, code, desc, reason, c.status, c.code, c.desc, c.reason)
		}
	}
}

func TestErrorsMiddleware(t *testing.T) {
	h := cscErrors(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/401":
			w.Header().Set("WWW-Authenticate", `Bearer realm="thiqa", error="invalid_token"`)
			problem.Write(w, problem.Details{Type: auth.ProblemCredentialsExpired, Status: 401, Detail: "invalid credentials: token expired"})
		case "/401-other":
			// The code comes from the problem's type, never its words.
			problem.Write(w, problem.Details{Status: 401, Detail: "invalid credentials: the token has expired claims"})
		case "/403":
			problem.Write(w, problem.Details{Status: 403, Detail: "the caller's roles do not grant the permission"})
		default:
			signing.WriteJSON(w, 200, map[string]string{"SAD": "x"})
		}
	}))
	for _, c := range []struct {
		path, want string
		status     int
	}{
		{"/401", `{"error":"expired_token","error_description":"invalid credentials: token expired"}`, 401},
		{"/401-other", `{"error":"invalid_token","error_description":"invalid credentials: the token has expired claims"}`, 401},
		{"/403", `{"error":"access_denied","error_description":"the caller's roles do not grant the permission"}`, 403},
		{"/ok", `{"SAD":"x"}`, 200},
	} {
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, httptest.NewRequest("POST", c.path, nil))
		if rec.Code != c.status || strings.TrimSpace(rec.Body.String()) != c.want || rec.Header().Get("Content-Type") != "application/json" {
			t.Errorf("%s: %d %s %q", c.path, rec.Code, rec.Body, rec.Header().Get("Content-Type"))
		}
		if c.path == "/401" && rec.Header().Get("WWW-Authenticate") == "" {
			t.Errorf("%s: the challenge was dropped", c.path)
		}
	}
}

// FuzzHashes feeds arbitrary hashes and algorithm OIDs to the CSC
// request checks: nothing panics, and an accepted hash has the size of the
// algorithm it is taken for.
func FuzzHashes(f *testing.F) {
	f.Add("q83vEjRWeJCrze8SNFZ4kKvN7xI0VniQq83vEjRWeJA=", "2.16.840.1.101.3.4.2.1")
	f.Add("AAAA,BBBB", "")
	f.Add("q83vEjRWeJCrze8SNFZ4kKvN7xI0VniQq83vEjRWeJA", "1.2.3")
	f.Fuzz(func(t *testing.T, list, oid string) {
		hashes, h, err := decodeHashes(strings.Split(list, ","), oid, 100)
		if err != nil {
			return
		}
		if h != crypto.SHA256 && h != crypto.SHA384 && h != crypto.SHA512 {
			t.Fatalf("accepted hash algorithm %v", h)
		}
		for _, x := range hashes {
			if len(x) != h.Size() {
				t.Fatalf("accepted a %d-byte %v hash", len(x), h)
			}
		}
		sad := &signing.SAD{HashAlg: signing.HashOID(h), Hashes: hashes[:len(hashes)/2], NumSignatures: len(hashes)}
		if err := signing.CheckSAD(sad, signing.HashOID(h), hashes); err == nil && len(hashes) > 0 && len(hashes)/2 < len(hashes) {
			// Every hash must have been matched by a distinct authorised one.
			t.Fatalf("a SAD for %d hashes covered %d", len(sad.Hashes), len(hashes))
		}
	})
}
