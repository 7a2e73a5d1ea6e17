// Package problem writes HTTP API errors as RFC 9457 problem details
// ("application/problem+json"), the one error shape every Thiqa JSON API uses.
package problem

import (
	"encoding/json"
	"net/http"
)

// ContentType is the media type of a problem details body.
const ContentType = "application/problem+json"

// Details is an RFC 9457 problem details object.
type Details struct {
	// Type is a URI reference identifying the problem type; "about:blank" when omitted.
	Type string `json:"type,omitempty"`
	// Title is a short, human-readable summary of the problem type.
	Title string `json:"title"`
	// Status is the HTTP status code.
	Status int `json:"status"`
	// Detail explains this occurrence of the problem.
	Detail string `json:"detail,omitempty"`
	// Instance identifies this occurrence (for example the request path).
	Instance string `json:"instance,omitempty"`
	// Errors lists individual findings (for example failed lints or invalid fields).
	Errors []string `json:"errors,omitempty"`
	// InvalidParams names each invalid request parameter and why, all of
	// them at once (the "invalid-params" extension of RFC 9457's example).
	InvalidParams []InvalidParam `json:"invalid-params,omitempty"`
}

// InvalidParam is one invalid request parameter of a problem.
type InvalidParam struct {
	// Name is the parameter (for a subject field, its JSON key).
	Name string `json:"name"`
	// Reason says what is wrong with it.
	Reason string `json:"reason"`
}

// Write sends p with its status code. The Title defaults to the status text.
// A 503 always tells when to come back: Retry-After is RetryAfterSeconds
// unless the caller set one.
func Write(w http.ResponseWriter, p Details) {
	if p.Status == 0 {
		p.Status = http.StatusInternalServerError
	}
	if p.Title == "" {
		p.Title = http.StatusText(p.Status)
	}
	RetryLater(w.Header(), p.Status)
	w.Header().Set("Content-Type", ContentType)
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(p.Status)
	_ = json.NewEncoder(w).Encode(p)
}

// Error sends a problem with the given status and detail text.
func Error(w http.ResponseWriter, status int, detail string) {
	Write(w, Details{Status: status, Detail: detail})
}

// UnavailableDetail is the detail of the problem Unavailable writes.
const UnavailableDetail = "the service is temporarily unavailable (a system it depends on cannot be reached); try again shortly"

// RetryAfterSeconds is the Retry-After of a 503 that sets none (RetryLater).
const RetryAfterSeconds = "5"

// RetryLater gives an answer of status 503 a Retry-After of
// RetryAfterSeconds unless h has one: every "try again later" of the
// services (problems, CSC and OAuth 2.0 errors) tells when to come back.
func RetryLater(h http.Header, status int) {
	if status == http.StatusServiceUnavailable && h.Get("Retry-After") == "" {
		h.Set("Retry-After", RetryAfterSeconds)
	}
}

// UnavailableDetails is the problem answering an error marked as an outage
// (outage.Is): the database cannot be reached, or its connection was lost
// mid-request, so whether a write took effect may not be known and a retry
// is the client's way to find out. Write sends it with its Retry-After.
func UnavailableDetails(instance string) Details {
	return Details{Status: http.StatusServiceUnavailable, Title: "Service unavailable", Detail: UnavailableDetail, Instance: instance}
}

// Unavailable sends UnavailableDetails.
func Unavailable(w http.ResponseWriter, instance string) { Write(w, UnavailableDetails(instance)) }
