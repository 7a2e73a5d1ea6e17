package enrol

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"time"

	"github.com/thiqa/thiqa/ca"
	"github.com/thiqa/thiqa/internal/auth"
	"github.com/thiqa/thiqa/internal/outage"
	"github.com/thiqa/thiqa/internal/problem"
	"github.com/thiqa/thiqa/policies"
)

// Mux is where the service mounts its routes: an *http.ServeMux, or
// cmd/thiqa's mux that also records its route table.
type Mux interface {
	Handle(pattern string, handler http.Handler)
}

// Guard wraps a handler so that it serves only callers allowed action
// ((*auth.Authenticator).Require).
type Guard func(action policies.Action) func(http.Handler) http.Handler

// PathEnrolments is the route that creates enrolments.
const PathEnrolments = "POST /api/v1/enrolments"

// PathVoid is the route that voids an enrolment.
const PathVoid = "POST /api/v1/enrolments/{reference}/void"

// Register mounts POST /api/v1/enrolments and POST
// /api/v1/enrolments/{reference}/void behind guard: who may create an
// enrolment may void one (registration officers).
func (s *Service) Register(mux Mux, guard Guard) {
	mux.Handle(PathEnrolments, guard(policies.ActionCreateEnrolment)(http.HandlerFunc(s.serveCreate)))
	mux.Handle(PathVoid, guard(policies.ActionVoidEnrolment)(http.HandlerFunc(s.serveVoid)))
}

// CreateRequest is the JSON body of POST /api/v1/enrolments.
type CreateRequest struct {
	Profile string            `json:"profile"`
	Subject map[string]string `json:"subject"`
	// Validity is how long the enrolment may be used, a Go duration
	// ("72h"); empty: the default (7 days).
	Validity string `json:"validity,omitempty"`
}

func (s *Service) serveCreate(w http.ResponseWriter, r *http.Request) {
	actor := "unknown"
	if p, ok := auth.FromContext(r.Context()); ok && p.Subject != "" {
		actor = p.Subject
	}
	var in CreateRequest
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, 16<<10))
	dec.DisallowUnknownFields()
	bad := func(detail string) {
		if err := s.Refused(r.Context(), actor, "enrolment", "api", errors.New(detail), nil); err != nil {
			if outage.Is(err) {
				problem.Unavailable(w, r.URL.Path)
				return
			}
			problem.Write(w, problem.Details{Status: http.StatusInternalServerError, Title: "Internal error", Detail: "the audit log is unavailable", Instance: r.URL.Path})
			return
		}
		problem.Write(w, problem.Details{Status: http.StatusBadRequest, Title: "Malformed request", Detail: detail, Instance: r.URL.Path})
	}
	if err := dec.Decode(&in); err != nil {
		bad("request body: " + err.Error())
		return
	}
	if dec.More() {
		bad("trailing data after the JSON object")
		return
	}
	var ttl time.Duration
	if in.Validity != "" {
		d, err := time.ParseDuration(in.Validity)
		if err != nil {
			bad("validity: " + err.Error())
			return
		}
		ttl = d
	}
	out, err := s.Create(r.Context(), actor, in.Profile, in.Subject, ttl)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("Location", "/api/v1/enrolments/"+out.Reference)
	w.WriteHeader(http.StatusCreated)
	_ = json.NewEncoder(w).Encode(out)
}

// The problem types of a void refused.
const (
	ProblemNotFound = "urn:thiqa:problem:enrolment-not-found"
	ProblemUsed     = "urn:thiqa:problem:enrolment-used"
	ProblemBusy     = "urn:thiqa:problem:enrolment-busy"
)

func (s *Service) fail(w http.ResponseWriter, r *http.Request, err error) {
	p := problem.Details{Instance: r.URL.Path, Detail: err.Error()}
	var se *policies.SubjectError
	var re *RequestError
	var cre *ca.RequestError
	switch {
	case errors.Is(err, ErrNotFound):
		p.Status, p.Type, p.Title = http.StatusNotFound, ProblemNotFound, "No such enrolment"
	case errors.Is(err, ErrUsed):
		p.Status, p.Type, p.Title = http.StatusConflict, ProblemUsed, "Enrolment used already"
	case errors.Is(err, ErrBusy):
		p.Status, p.Type, p.Title = http.StatusConflict, ProblemBusy, "Enrolment in use by a request now"
	case errors.Is(err, policies.ErrUnknownProfile):
		p.Status, p.Type, p.Title = http.StatusBadRequest, "urn:thiqa:problem:unknown-profile", "Unknown certificate profile"
	case errors.As(err, &se):
		p.Status, p.Type, p.Title = http.StatusBadRequest, "urn:thiqa:problem:bad-subject", "Invalid subject field"
		var all policies.SubjectErrors
		if !errors.As(err, &all) {
			all = policies.SubjectErrors{se}
		}
		for _, e := range all {
			p.Errors = append(p.Errors, e.Field)
			p.InvalidParams = append(p.InvalidParams, problem.InvalidParam{Name: e.Field, Reason: e.Reason})
		}
	case errors.As(err, &re), errors.As(err, &cre):
		p.Status, p.Type, p.Title = http.StatusBadRequest, "urn:thiqa:problem:bad-request", "Bad request"
	case errors.Is(err, ca.ErrIssuerExpiring):
		// An enrolment the CA could never honour is not created; the CA
		// API's answer to the same condition (ca.ProblemIssuerExpiring).
		s.log.ErrorContext(r.Context(), "enrolment API error", "err", err)
		p.Status, p.Type, p.Title = http.StatusInternalServerError, ca.ProblemIssuerExpiring, "Issuing CA at the end of its validity"
	case errors.Is(err, ca.ErrIssuerRevoked):
		// The CA API's answer to the same condition (ca.ProblemIssuerRevoked).
		s.log.ErrorContext(r.Context(), "enrolment API error", "err", err)
		p.Status, p.Type, p.Title = http.StatusConflict, ca.ProblemIssuerRevoked, "Issuing CA revoked by the root"
	case outage.Is(err):
		s.log.ErrorContext(r.Context(), "enrolment API error", "err", err)
		problem.Unavailable(w, r.URL.Path)
		return
	default:
		s.log.ErrorContext(r.Context(), "enrolment API error", "err", err)
		p.Status, p.Title, p.Detail = http.StatusInternalServerError, "Internal error", "the enrolment could not be recorded; see the server log"
	}
	problem.Write(w, p)
}

// VoidRequest is the optional JSON body of POST
// /api/v1/enrolments/{reference}/void.
type VoidRequest struct {
	// Reason is why the enrolment is voided, for the audit log.
	Reason string `json:"reason,omitempty"`
}

func (s *Service) serveVoid(w http.ResponseWriter, r *http.Request) {
	actor := "unknown"
	if p, ok := auth.FromContext(r.Context()); ok && p.Subject != "" {
		actor = p.Subject
	}
	ref := r.PathValue("reference")
	var in VoidRequest
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, 8<<10))
	if err == nil && len(bytes.TrimSpace(body)) > 0 {
		dec := json.NewDecoder(bytes.NewReader(body))
		dec.DisallowUnknownFields()
		if err = dec.Decode(&in); err == nil && dec.More() {
			err = errors.New("trailing data after the JSON object")
		}
	}
	if err != nil {
		if aerr := s.Refused(r.Context(), actor, ref, "api", fmt.Errorf("void: request body: %w", err), nil); aerr != nil {
			if outage.Is(aerr) {
				problem.Unavailable(w, r.URL.Path)
				return
			}
			problem.Write(w, problem.Details{Status: http.StatusInternalServerError, Title: "Internal error", Detail: "the audit log is unavailable", Instance: r.URL.Path})
			return
		}
		problem.Write(w, problem.Details{Status: http.StatusBadRequest, Type: "urn:thiqa:problem:bad-request", Title: "Malformed request", Detail: "request body: " + err.Error(), Instance: r.URL.Path})
		return
	}
	e, err := s.Void(r.Context(), actor, ref, in.Reason)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	_ = json.NewEncoder(w).Encode(StatusOf(e))
}
