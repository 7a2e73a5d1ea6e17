package activity

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strconv"

	"github.com/thiqa/thiqa/internal/audit"
	"github.com/thiqa/thiqa/internal/auth"
	"github.com/thiqa/thiqa/internal/outage"
	"github.com/thiqa/thiqa/internal/problem"
	"github.com/thiqa/thiqa/policies"
)

// Guard wraps a handler in the authentication and authorisation of action,
// answering (and auditing) the refusals itself; cmd/thiqa passes
// (*auth.Authenticator).Require.
type Guard func(action policies.Action) func(http.Handler) http.Handler

// Mux is where the service mounts its route.
type Mux interface {
	Handle(pattern string, handler http.Handler)
}

// Options configure a Service.
type Options struct {
	Store Store
	Audit Auditor
	// Logger receives server-side errors; discarded when nil.
	Logger *slog.Logger
}

// Service answers GET /api/v1/me/activity.
type Service struct {
	store Store
	audit Auditor
	log   *slog.Logger
}

// New returns the service over o.
func New(o Options) (*Service, error) {
	if o.Store == nil || o.Audit == nil {
		return nil, errors.New("activity: a store and an audit log are required")
	}
	log := o.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Service{store: o.Store, audit: o.Audit, log: log}, nil
}

// Register mounts GET /api/v1/me/activity on mux behind guard
// (policies.ActionReadOwnActivity: citizens).
func (s *Service) Register(mux Mux, guard Guard) {
	mux.Handle("GET "+Path, guard(policies.ActionReadOwnActivity)(http.HandlerFunc(s.serve)))
}

// ParseBefore reads the cursor: "" is the newest page (0), otherwise a
// record's seq, a whole number from 1 written in decimal digits alone.
func ParseBefore(v string) (int64, error) {
	if v == "" {
		return 0, nil
	}
	for _, c := range v {
		if c < '0' || c > '9' {
			return 0, ErrBadCursor
		}
	}
	n, err := strconv.ParseInt(v, 10, 64)
	if err != nil || n < 1 {
		return 0, ErrBadCursor
	}
	return n, nil
}

// serve answers the caller's own activity. Every answer is recorded
// before it leaves: a reading of personal data as a success with its
// count, a refusal with its reason; without its record the answer is the
// service's failure instead.
func (s *Service) serve(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	pr, _ := auth.FromContext(ctx)
	actor := "unknown"
	if pr != nil && pr.Subject != "" {
		actor = pr.Subject
	}
	refuse := func(status int, title, detail string) {
		if _, err := s.audit.Append(ctx, audit.Entry{Actor: actor, Action: ActionRead, Object: r.URL.Path, Outcome: audit.OutcomeRefused,
			Details: map[string]any{"status": status, "reason": detail, "caller": auth.CallerOf(ctx)}}); err != nil {
			s.fail(w, r, fmt.Errorf("recording a refusal: %w", err))
			return
		}
		problem.Write(w, problem.Details{Status: status, Title: title, Detail: detail, Instance: r.URL.Path})
	}
	if !pr.Has(policies.RoleCitizen) || pr.CivilNumber == "" {
		refuse(http.StatusForbidden, "Forbidden", "the caller has no citizen identity: the activity shown is a citizen's own")
		return
	}
	before, err := ParseBefore(r.URL.Query().Get("before"))
	if err != nil {
		refuse(http.StatusBadRequest, "Bad request", "before is the seq of a record, a whole number from 1 (the nextBefore of the previous page)")
		return
	}
	out, err := s.Page(ctx, pr.CivilNumber, before)
	if err != nil {
		if _, aerr := s.audit.Append(ctx, audit.Entry{Actor: actor, Action: ActionRead, Object: "citizen:" + pr.CivilNumber, Outcome: audit.OutcomeFailure,
			Details: map[string]any{"reason": err.Error()}}); aerr != nil {
			s.log.ErrorContext(ctx, "audit append failed", "action", ActionRead, "err", aerr)
		}
		s.fail(w, r, err)
		return
	}
	d := map[string]any{"count": len(out.Entries)}
	if before > 0 {
		d["before"] = before
	}
	if _, err := s.audit.Append(ctx, audit.Entry{Actor: actor, Action: ActionRead, Object: "citizen:" + pr.CivilNumber, Outcome: audit.OutcomeSuccess,
		Details: d}); err != nil {
		s.fail(w, r, fmt.Errorf("recording the reading: %w", err))
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	_ = json.NewEncoder(w).Encode(out)
}

// fail answers a failure of the service: 503 when the database or the
// disk is out for a while (outage.Is), 500 otherwise.
func (s *Service) fail(w http.ResponseWriter, r *http.Request, err error) {
	s.log.ErrorContext(r.Context(), "reading a citizen's activity", "err", err)
	if outage.Is(err) {
		problem.Unavailable(w, r.URL.Path)
		return
	}
	problem.Write(w, problem.Details{Status: http.StatusInternalServerError, Title: "Internal error", Detail: "the activity cannot be read now", Instance: r.URL.Path})
}

// Page returns one page of the activity of the citizen with civilNumber:
// the records older than before (0: the newest), at most PageSize,
// described by the allowlist; Truncated when the citizen holds more than
// MaxHoldings certificates.
func (s *Service) Page(ctx context.Context, civilNumber string, before int64) (*Response, error) {
	// One more than the bound tells whether the citizen holds more.
	hs, err := s.store.Holdings(ctx, civilNumber, MaxHoldings+1)
	if err != nil {
		return nil, fmt.Errorf("activity: the certificates of a citizen: %w", err)
	}
	truncated := len(hs) > MaxHoldings
	if truncated {
		hs = hs[:MaxHoldings]
	}
	h := &holder{actors: CitizenActors(civilNumber), serials: map[string]bool{}, credentials: map[string]bool{}, person: "citizen:" + civilNumber, truncated: truncated}
	q := Query{Actors: h.actors, Objects: []string{h.person}, Before: before, Limit: PageSize + 1}
	for _, x := range hs {
		if x.Serial != "" && !h.serials[x.Serial] {
			h.serials[x.Serial] = true
			q.Objects = append(q.Objects, x.Serial)
		}
		if x.CredentialID != "" && !h.credentials[x.CredentialID] {
			h.credentials[x.CredentialID] = true
			q.Objects = append(q.Objects, x.CredentialID)
		}
	}
	recs, err := s.store.ActivityRecords(ctx, q)
	if err != nil {
		return nil, fmt.Errorf("activity: reading the records: %w", err)
	}
	out := &Response{Entries: make([]Entry, 0, min(len(recs), PageSize)), Truncated: truncated}
	if len(recs) > PageSize {
		recs = recs[:PageSize]
		out.NextBefore = recs[PageSize-1].Seq
	}
	var logins []string
	for _, rec := range recs {
		if allowlist[rec.Action].fields&fClient != 0 && rec.Object != "" {
			logins = append(logins, rec.Object)
		}
	}
	if len(logins) > 0 {
		if h.clients, err = s.store.ClientNames(ctx, logins); err != nil {
			return nil, fmt.Errorf("activity: the names of the portals: %w", err)
		}
	}
	for _, rec := range recs {
		if h.shows(rec) {
			out.Entries = append(out.Entries, h.describe(rec))
		}
	}
	return out, nil
}

// CitizenActors are the actors under which a citizen's own records are
// written: the civil number (the API's callers, the portal's sign-in:
// the principal's subject) and "citizen:" followed by it (the identity
// provider's logins, phone approvals and deny-all).
func CitizenActors(civilNumber string) []string {
	return []string{civilNumber, "citizen:" + civilNumber}
}
