package main

// Errors of the /csc/v2/* endpoints in the Cloud Signature Consortium API
// v2 shape (CSC API v2.0.0.2, section 10 "Error handling"): the HTTP status
// and a JSON object {"error": <code>, "error_description": <text>}, the
// codes those of section 10.2 (table 3) and of the methods' error tables in
// section 11. Clients written against the CSC specification parse this
// shape, not RFC 9457 problems; every other Thiqa API keeps problem JSON.

import (
	"bytes"
	"encoding/json"
	"errors"
	"net/http"
	"strings"

	"github.com/thiqa/thiqa/internal/pin"
	"github.com/thiqa/thiqa/internal/problem"
)

// CSC error codes (CSC API v2 section 10.2 table 3, and section 11.6 for
// invalid_authentication_data).
const (
	cscInvalidRequest   = "invalid_request"
	cscInvalidAuthData  = "invalid_authentication_data"
	cscAccessDenied     = "access_denied"
	cscInvalidToken     = "invalid_token"
	cscExpiredToken     = "expired_token"
	cscServerError      = "server_error"
	cscTemporarilyUnava = "temporarily_unavailable"
)

// CSCError is the error body of the CSC API.
type CSCError struct {
	Error            string `json:"error"`
	ErrorDescription string `json:"error_description,omitempty"`
}

// writeCSCError sends a CSC error body with its status.
func writeCSCError(w http.ResponseWriter, status int, code, description string) {
	w.Header().Set("X-Content-Type-Options", "nosniff")
	writeJSON(w, status, CSCError{Error: code, ErrorDescription: description})
}

// cscRefusal is a refusal stated in the CSC specification's own words: the
// error code and the specification's error description, to which the
// Thiqa-specific detail is appended.
type cscRefusal struct {
	status int
	code   string
	spec   string // the specification's error description
	err    error  // Thiqa's reason (for the audit record and the detail)
}

func (e *cscRefusal) Error() string {
	if e.err == nil {
		return e.spec
	}
	return e.spec + ": " + e.err.Error()
}
func (e *cscRefusal) Unwrap() error { return e.err }

// cscInvalid is a 400 invalid_request with the specification's description
// and Thiqa's reason (nil for none).
func cscInvalid(spec string, reason error) error {
	return &cscRefusal{status: http.StatusBadRequest, code: cscInvalidRequest, spec: spec, err: reason}
}

// cscClassify maps an error of a CSC method to the HTTP status, the CSC
// error code and the error_description. msg is Thiqa's own wording from
// classify (kept in the description after the specification's text).
func cscClassify(err error, status int, msg string) (int, string, string) {
	var cr *cscRefusal
	var we *pin.WrongError
	join := func(spec string) string {
		if msg == "" || msg == spec {
			return spec
		}
		return spec + ": " + msg
	}
	switch {
	case errors.As(err, &cr):
		if cr.err == nil {
			return cr.status, cr.code, cr.spec
		}
		_, inner, _ := classify(cr.err)
		if inner == "signing failed" { // not a refusal with a message of its own
			inner = cr.err.Error()
		}
		return cr.status, cr.code, cr.spec + ": " + inner
	case errors.Is(err, pin.ErrLocked):
		// Section 11.6: "Credential locked", 400 invalid_request.
		return http.StatusBadRequest, cscInvalidRequest, join("Credential locked")
	case errors.As(err, &we):
		// Section 11.6: invalid authentication data, 400.
		return http.StatusBadRequest, cscInvalidAuthData, join("The authentication data is invalid")
	case errors.Is(err, pin.ErrNotSet):
		// Section 11.6: a disabled signing key is a 400 invalid_request.
		return http.StatusBadRequest, cscInvalidRequest, join("The credential identified by credentialID is disabled")
	case errors.Is(err, errCredentialRefused):
		// Sections 11.5, 11.6, 11.10: "Invalid parameter credentialID".
		return http.StatusBadRequest, cscInvalidRequest, join("Invalid parameter credentialID")
	}
	switch {
	case status == http.StatusUnauthorized:
		return status, cscInvalidToken, msg
	case status == http.StatusServiceUnavailable || status == http.StatusGatewayTimeout:
		return http.StatusServiceUnavailable, cscTemporarilyUnava, msg
	case status >= 500:
		return http.StatusInternalServerError, cscServerError, msg
	}
	// Section 10.1: unsupported, invalid or missing parameters are 400
	// (the statuses it lists for errors are 400, 401, 429, 500, 501 and 503),
	// and the methods' tables give 400 invalid_request for a credential
	// that cannot be used. Only the caller's lack of a citizen identity and
	// the authentication layer's role refusal stay 403 access_denied.
	return http.StatusBadRequest, cscInvalidRequest, msg
}

// cscErrors rewrites the RFC 9457 problems written by the handlers it wraps
// (the authentication middleware's 401 and 403) into CSC error bodies,
// keeping the status and the WWW-Authenticate challenge. Responses that are
// not problems pass through untouched.
func cscErrors(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		cw := &cscProblemWriter{ResponseWriter: w}
		next.ServeHTTP(cw, r)
		if !cw.problem {
			return
		}
		var p problem.Details
		_ = json.Unmarshal(cw.body.Bytes(), &p)
		status, code := cw.status, cscInvalidRequest
		switch {
		case status == http.StatusUnauthorized:
			code = cscInvalidToken
			if strings.Contains(strings.ToLower(p.Detail), "expired") {
				code = cscExpiredToken
			}
		case status == http.StatusForbidden:
			code = cscAccessDenied
		case status >= 500:
			code = cscServerError
		}
		w.Header().Del("Content-Type")
		writeCSCError(w, status, code, p.Detail)
	})
}

// cscProblemWriter holds back a problem+json response for cscErrors.
type cscProblemWriter struct {
	http.ResponseWriter
	status  int
	problem bool
	wrote   bool
	body    bytes.Buffer
}

func (c *cscProblemWriter) WriteHeader(status int) {
	if c.wrote {
		return
	}
	c.wrote, c.status = true, status
	if status >= 400 && c.Header().Get("Content-Type") == problem.ContentType {
		c.problem = true
		return
	}
	c.ResponseWriter.WriteHeader(status)
}

func (c *cscProblemWriter) Write(b []byte) (int, error) {
	if !c.wrote {
		c.WriteHeader(http.StatusOK)
	}
	if c.problem {
		return c.body.Write(b)
	}
	return c.ResponseWriter.Write(b)
}
