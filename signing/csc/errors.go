package csc

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

	"github.com/thiqa/thiqa/internal/audit"
	"github.com/thiqa/thiqa/internal/auth"
	"github.com/thiqa/thiqa/internal/pin"
	"github.com/thiqa/thiqa/internal/problem"
	"github.com/thiqa/thiqa/signing"
)

// CSC error codes (CSC API v2 section 10.2 table 3, and section 11.6 for
// invalid_authentication_data).
const (
	// CodeInvalidRequest: a missing, invalid or unusable parameter.
	CodeInvalidRequest = "invalid_request"
	// CodeInvalidAuthData: the authentication data (the PIN) is wrong.
	CodeInvalidAuthData = "invalid_authentication_data"
	// CodeAccessDenied: the caller may not use the method.
	CodeAccessDenied = "access_denied"
	// CodeInvalidToken: the access token is missing or invalid.
	CodeInvalidToken = "invalid_token"
	// CodeExpiredToken: the access token has expired.
	CodeExpiredToken = "expired_token"
	// CodeServerError: the service failed.
	CodeServerError = "server_error"
	// CodeTemporarilyUnavailable: a dependency (TSA, store) did not answer
	// in time.
	CodeTemporarilyUnavailable = "temporarily_unavailable"
)

// Error is the error body of the CSC API.
type Error struct {
	// Error is the error code, one of the Code constants.
	Error string `json:"error"`
	// ErrorDescription explains it: the specification's words, then
	// Thiqa's detail.
	ErrorDescription string `json:"error_description,omitempty"`
}

// writeError sends a CSC error body with its status.
func writeError(w http.ResponseWriter, status int, code, description string) {
	w.Header().Set("X-Content-Type-Options", "nosniff")
	problem.RetryLater(w.Header(), status) // temporarily_unavailable: when to try again
	signing.WriteJSON(w, status, Error{Error: code, ErrorDescription: description})
}

// specError is a request refused in the CSC specification's own words
// (400 invalid_request): the specification's error description, to which
// Thiqa's reason, when there is one, is appended.
type specError struct {
	spec string // the specification's error description
	err  error  // Thiqa's reason (for the audit record and the detail)
}

func (e *specError) Error() string {
	if e.err == nil {
		return e.spec
	}
	return e.spec + ": " + e.err.Error()
}

func (e *specError) Unwrap() error { return e.err }

// invalid is a 400 invalid_request with the specification's description
// and Thiqa's reason (nil for none).
func invalid(spec string, reason error) error {
	return &specError{spec: spec, err: reason}
}

// classify maps an error of a CSC method to the HTTP status, the CSC error
// code, the error_description, and the reason and outcome of its audit
// record. It builds on signing.Classify, the service's own mapping, whose
// wording it keeps after the specification's.
func classify(err error) (status int, code, description, reason, outcome string) {
	status, msg, outcome := signing.Classify(err)
	var se *specError
	if errors.As(err, &se) {
		// A reason the service has its own words for (a refusal) is told
		// as such; any other is told as it is.
		var rf *signing.Refusal
		status, code, outcome = http.StatusBadRequest, CodeInvalidRequest, audit.OutcomeRefused
		switch {
		case se.err == nil:
			return status, code, se.spec, se.spec, outcome
		case errors.As(se.err, &rf):
			return status, code, se.spec + ": " + rf.Reason, rf.Reason, outcome
		}
		return status, code, se.Error(), se.Error(), outcome
	}
	var we *pin.WrongError
	join := func(spec string) string {
		if msg == "" || msg == spec {
			return spec
		}
		return spec + ": " + msg
	}
	switch {
	case errors.Is(err, pin.ErrLocked):
		// Section 11.6: "Credential locked", 400 invalid_request.
		return http.StatusBadRequest, CodeInvalidRequest, join("Credential locked"), msg, outcome
	case errors.As(err, &we):
		// Section 11.6: invalid authentication data, 400.
		return http.StatusBadRequest, CodeInvalidAuthData, join("The authentication data is invalid"), msg, outcome
	case errors.Is(err, pin.ErrNotSet):
		// Section 11.6: a disabled signing key is a 400 invalid_request.
		return http.StatusBadRequest, CodeInvalidRequest, join("The credential identified by credentialID is disabled"), msg, outcome
	case errors.Is(err, signing.ErrCredentialRefused):
		// Sections 11.5, 11.6, 11.10: "Invalid parameter credentialID".
		return http.StatusBadRequest, CodeInvalidRequest, join("Invalid parameter credentialID"), msg, outcome
	case errors.Is(err, signing.ErrNoIdentity), errors.Is(err, signing.ErrOutOfScope):
		return http.StatusForbidden, CodeAccessDenied, msg, msg, outcome
	case status == http.StatusUnauthorized:
		return status, CodeInvalidToken, msg, msg, outcome
	case status == http.StatusServiceUnavailable || status == http.StatusGatewayTimeout:
		return http.StatusServiceUnavailable, CodeTemporarilyUnavailable, msg, msg, outcome
	case status >= 500:
		return http.StatusInternalServerError, CodeServerError, msg, msg, outcome
	}
	// Section 10.1: unsupported, invalid or missing parameters are 400
	// (the statuses it lists for errors are 400, 401, 429, 500, 501 and 503),
	// and the methods' tables give 400 invalid_request for a credential
	// that cannot be used. Only the caller's lack of a citizen identity and
	// the authentication layer's role refusal stay 403 access_denied.
	return http.StatusBadRequest, CodeInvalidRequest, msg, msg, outcome
}

// cscErrors rewrites the RFC 9457 problems written by the handlers it wraps
// (the authentication middleware's 401 and 403) into CSC error bodies,
// keeping the status and the WWW-Authenticate challenge. Responses that are
// not problems pass through untouched.
func cscErrors(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		cw := &problemWriter{ResponseWriter: w}
		next.ServeHTTP(cw, r)
		if !cw.problem {
			return
		}
		var p problem.Details
		_ = json.Unmarshal(cw.body.Bytes(), &p)
		status, code := cw.status, CodeInvalidRequest
		switch {
		case status == http.StatusUnauthorized:
			code = CodeInvalidToken
			if p.Type == auth.ProblemCredentialsExpired {
				code = CodeExpiredToken
			}
		case status == http.StatusForbidden:
			code = CodeAccessDenied
		case status >= 500:
			code = CodeServerError
		}
		w.Header().Del("Content-Type")
		writeError(w, status, code, p.Detail)
	})
}

// problemWriter holds back a problem+json response for cscErrors.
type problemWriter struct {
	http.ResponseWriter
	status  int
	problem bool
	wrote   bool
	body    bytes.Buffer
}

func (c *problemWriter) WriteHeader(status int) {
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

func (c *problemWriter) Write(b []byte) (int, error) {
	if !c.wrote {
		c.WriteHeader(http.StatusOK)
	}
	if c.problem {
		return c.body.Write(b)
	}
	return c.ResponseWriter.Write(b)
}
