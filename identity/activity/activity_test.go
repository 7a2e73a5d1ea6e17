package activity_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/thiqa/thiqa/identity/activity"
	"github.com/thiqa/thiqa/internal/audit"
	"github.com/thiqa/thiqa/internal/auth/authtest"
	"github.com/thiqa/thiqa/policies"
)

// memLog is an audit log and the store over it: what the service appends
// is read back like any other record.
type memLog struct {
	mu       sync.Mutex
	recs     []activity.Record
	holdings map[string][]activity.Holding
	clients  map[string]string
	down     bool
}

func (m *memLog) Append(_ context.Context, e audit.Entry) (audit.Record, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.down {
		return audit.Record{}, errors.New("the audit database is down")
	}
	d, err := json.Marshal(e.Details)
	if err != nil {
		return audit.Record{}, err
	}
	seq := int64(len(m.recs) + 1)
	m.recs = append(m.recs, activity.Record{Seq: seq, Time: time.Unix(1_800_000_000+seq, 0).UTC(), Actor: e.Actor, Action: e.Action,
		Object: e.Object, Outcome: e.Outcome, Details: d})
	return audit.Record{Seq: seq}, nil
}

func (m *memLog) Holdings(_ context.Context, civil string, limit int) ([]activity.Holding, error) {
	h := m.holdings[civil]
	return h[:min(len(h), limit)], nil
}

func (m *memLog) ActivityRecords(_ context.Context, q activity.Query) ([]activity.Record, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	var out []activity.Record
	for i := len(m.recs) - 1; i >= 0 && len(out) < q.Limit; i-- {
		r := m.recs[i]
		if q.Before > 0 && r.Seq >= q.Before {
			continue
		}
		if slices.Contains(q.Objects, r.Object) || slices.Contains(q.Actors, r.Actor) {
			out = append(out, r)
		}
	}
	return out, nil
}

func (m *memLog) ClientNames(_ context.Context, ids []string) (map[string]string, error) {
	out := map[string]string{}
	for _, id := range ids {
		if n, ok := m.clients[id]; ok {
			out[id] = n
		}
	}
	return out, nil
}

// count counts the records of action and outcome.
func (m *memLog) count(action, outcome string) int {
	m.mu.Lock()
	defer m.mu.Unlock()
	n := 0
	for _, r := range m.recs {
		if r.Action == action && r.Outcome == outcome {
			n++
		}
	}
	return n
}

const (
	civilA = "11111111"
	civilB = "22222222"
)

// fixture is the service behind the real guard, citizen A and B holding
// a certificate and a credential each, an officer and a portal.
type fixture struct {
	log *memLog
	h   http.Handler
	tok map[string]string
}

func newFixture(t *testing.T) *fixture {
	t.Helper()
	log := &memLog{clients: map[string]string{"oidc-tax": "Tax portal"}, holdings: map[string][]activity.Holding{
		civilA: {{Serial: "0aaa", CredentialID: "cred-a"}},
		civilB: {{Serial: "0bbb", CredentialID: "cred-b"}},
	}}
	is := authtest.New(t, log)
	svc, err := activity.New(activity.Options{Store: log, Audit: log})
	if err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	svc.Register(mux, is.Authn.Require)
	return &fixture{log: log, h: mux, tok: map[string]string{
		civilA: is.Token(t, civilA, policies.RoleCitizen), civilB: is.Token(t, civilB, policies.RoleCitizen),
		"officer": is.Token(t, "officer-jane.doe", policies.RoleRegistrationOfficer),
	}}
}

func (f *fixture) seed(t *testing.T, es ...audit.Entry) {
	t.Helper()
	for _, e := range es {
		if _, err := f.log.Append(context.Background(), e); err != nil {
			t.Fatal(err)
		}
	}
}

func (f *fixture) get(who, query string) *httptest.ResponseRecorder {
	r := httptest.NewRequest(http.MethodGet, activity.Path+query, nil)
	if who != "" {
		r.Header.Set("Authorization", "Bearer "+f.tok[who])
	}
	w := httptest.NewRecorder()
	f.h.ServeHTTP(w, r)
	return w
}

func (f *fixture) page(t *testing.T, who, query string) activity.Response {
	t.Helper()
	w := f.get(who, query)
	if w.Code != http.StatusOK || w.Header().Get("Cache-Control") != "no-store" {
		t.Fatalf("GET %s as %s: %d %s", query, who, w.Code, w.Body)
	}
	var out activity.Response
	if err := json.Unmarshal(w.Body.Bytes(), &out); err != nil {
		t.Fatal(err)
	}
	return out
}

// everyone's is a log with records of both citizens and of an officer
// acting on them.
func everyones() []audit.Entry {
	return []audit.Entry{
		{Actor: "officer-jane.doe", Action: "certificate.issue", Object: "0aaa", Outcome: "success",
			Details: map[string]any{"profile": "citizen-signing", "subject": "CN=Aisha Al Balushi,SERIALNUMBER=IDCOM-11111111", "ca": "citizen"}}, // 1
		{Actor: "officer-jane.doe", Action: "certificate.issue", Object: "0bbb", Outcome: "success", Details: map[string]any{"profile": "citizen-signing"}}, // 2
		{Actor: "citizen:" + civilA, Action: "oidc.login", Object: "oidc-tax", Outcome: "success",
			Details: map[string]any{"method": "mobile", "remote": "203.0.113.9:4431", "grant": "g-1"}}, // 3
		{Actor: civilB, Action: "document.sign", Object: "cred-b", Outcome: "success", Details: map[string]any{"documentDigest": strings.Repeat("bb", 32)}}, // 4
		{Actor: civilA, Action: "document.sign", Object: "cred-a", Outcome: "success",
			Details: map[string]any{"documentDigest": strings.Repeat("aa", 32), "level": "B-LT", "name": "contract.pdf"}}, // 5
		{Actor: "officer-jane.doe", Action: "credential.pin.reset", Object: "cred-a", Outcome: "success", Details: map[string]any{"remote": "198.51.100.7"}}, // 6
		{Actor: civilB, Action: "document.sign", Object: "cred-a", Outcome: "refused",
			Details: map[string]any{"reason": "not the owner", "caller": map[string]any{"subject": civilB, "roles": []string{"citizen"}}}}, // 7
		{Actor: "citizen:" + civilA, Action: "oidc.login.deny-all", Object: "citizen:" + civilA, Outcome: "success",
			Details: map[string]any{"denied": 2, "blockedAddresses": []string{"192.0.2.1"}}}, // 8
		{Actor: civilA, Action: "some.future.action", Object: "cred-a", Outcome: "success", Details: map[string]any{"secret": "s3cr3t"}}, // 9
	}
}

// Each citizen sees their own records alone; no staff name, address,
// subject or raw detail reaches them.
func TestOwnRecordsOnly(t *testing.T) {
	f := newFixture(t)
	f.seed(t, everyones()...)
	seqs := func(r activity.Response) []int64 {
		var out []int64
		for _, e := range r.Entries {
			out = append(out, e.Seq)
		}
		return out
	}
	a := f.page(t, civilA, "")
	if got := fmt.Sprint(seqs(a)); got != "[9 8 7 6 5 3 1]" {
		t.Fatalf("A sees %s, want [9 8 7 6 5 3 1]", got)
	}
	b := f.page(t, civilB, "")
	// B's own: 2, 4, 7 (B's refused attempt on A's credential: B made it).
	if got := fmt.Sprint(seqs(b)); got != "[7 4 2]" {
		t.Fatalf("B sees %s, want [7 4 2]", got)
	}
	// B's record of the attempt shows nothing of A's credential.
	if e := b.Entries[0]; e.Credential != "" || e.DocumentDigest != "" || e.By != activity.ByYou {
		t.Fatalf("B's attempt on A's credential: %+v", e)
	}
	raw := f.get(civilA, "").Body.String() + f.get(civilB, "").Body.String()
	for _, leak := range []string{"officer-jane", "203.0.113", "198.51.100", "192.0.2.1", "CN=", "Aisha", "contract.pdf", "g-1", "s3cr3t", "not the owner", civilB + `"`} {
		if strings.Contains(raw, leak) {
			t.Errorf("an answer shows %q:\n%s", leak, raw)
		}
	}
	want := map[int64]activity.Entry{
		1: {By: activity.BySomeoneElse, Serial: "0aaa", Profile: "citizen-signing"},
		3: {By: activity.ByYou, Client: "Tax portal", Method: "mobile"},
		5: {By: activity.ByYou, Credential: "cred-a", DocumentDigest: strings.Repeat("aa", 32), Level: "B-LT"},
		6: {By: activity.ByRegistrationOfficer, Credential: "cred-a"},
		7: {By: activity.BySomeoneElse, Credential: "cred-a"},
		9: {},
	}
	for _, e := range a.Entries {
		w, ok := want[e.Seq]
		if !ok {
			continue
		}
		got := e
		got.Seq, got.Time, got.Action, got.Outcome, got.Description, got.Denied = 0, time.Time{}, "", "", "", nil
		if got != w {
			t.Errorf("record %d (%s): %+v, want %+v", e.Seq, e.Action, got, w)
		}
	}
	if e := a.Entries[1]; e.Seq != 8 || e.Denied == nil || *e.Denied != 2 {
		t.Errorf("deny-all: %+v", e)
	}
	if e := a.Entries[0]; e.Description != "Other recorded activity" || e.Action != "some.future.action" {
		t.Errorf("an unknown action: %+v", e)
	}
}

// Pages of 50, newest first, each older than the last, none twice, all
// of them; the reading itself is recorded, before the answer.
func TestPaging(t *testing.T) {
	f := newFixture(t)
	for i := range 120 {
		f.seed(t, audit.Entry{Actor: civilA, Action: "document.sign", Object: "cred-a", Outcome: "success"})
		if i%3 == 0 {
			f.seed(t, audit.Entry{Actor: civilB, Action: "document.sign", Object: "cred-b", Outcome: "success"})
		}
	}
	seen := map[int64]bool{}
	query, pages := "", 0
	for {
		p := f.page(t, civilA, query)
		pages++
		if len(p.Entries) > activity.PageSize {
			t.Fatalf("a page of %d", len(p.Entries))
		}
		for i, e := range p.Entries {
			if seen[e.Seq] || i > 0 && e.Seq >= p.Entries[i-1].Seq {
				t.Fatalf("page %d: record %d out of order or twice", pages, e.Seq)
			}
			seen[e.Seq] = true
		}
		if p.NextBefore == 0 {
			break
		}
		if p.NextBefore != p.Entries[len(p.Entries)-1].Seq {
			t.Fatalf("nextBefore %d, last %d", p.NextBefore, p.Entries[len(p.Entries)-1].Seq)
		}
		query = fmt.Sprintf("?before=%d", p.NextBefore)
	}
	// The 120 signatures (each reading is recorded after its page is read,
	// so newer than the cursor of the later pages).
	if pages != 3 || len(seen) != 120 {
		t.Fatalf("%d pages, %d records", pages, len(seen))
	}
	if n := f.log.count(activity.ActionRead, audit.OutcomeSuccess); n != 3 {
		t.Fatalf("%d readings recorded, want 3", n)
	}
}

// A bad cursor is a 400 problem, recorded; an unauthenticated caller 401,
// an officer 403 (the guard records both).
func TestRefusals(t *testing.T) {
	f := newFixture(t)
	for i, q := range []string{"?before=abc", "?before=0", "?before=-5", "?before=%2B5", "?before=1e3", "?before=99999999999999999999"} {
		w := f.get(civilA, q)
		if w.Code != http.StatusBadRequest || w.Header().Get("Content-Type") != "application/problem+json" || !strings.Contains(w.Body.String(), "before") {
			t.Fatalf("%s: %d %s %s", q, w.Code, w.Header().Get("Content-Type"), w.Body)
		}
		if n := f.log.count(activity.ActionRead, audit.OutcomeRefused); n != i+1 {
			t.Fatalf("%s: %d refusals recorded", q, n)
		}
	}
	if w := f.get("", ""); w.Code != http.StatusUnauthorized || w.Header().Get("Content-Type") != "application/problem+json" {
		t.Fatalf("unauthenticated: %d %s", w.Code, w.Header().Get("Content-Type"))
	}
	if w := f.get("officer", ""); w.Code != http.StatusForbidden || w.Header().Get("Content-Type") != "application/problem+json" {
		t.Fatalf("an officer: %d", w.Code)
	}
	if n := f.log.count(activity.ActionRead, audit.OutcomeRefused); n != 8 {
		t.Fatalf("%d refusals recorded, want 8", n)
	}
	if n := f.log.count(activity.ActionRead, audit.OutcomeSuccess); n != 0 {
		t.Fatalf("%d readings recorded", n)
	}
}

// Without its audit record no answer leaves: the service's failure.
func TestUnrecordedReadingFails(t *testing.T) {
	f := newFixture(t)
	f.seed(t, everyones()...)
	f.log.down = true
	w := f.get(civilA, "")
	if w.Code != http.StatusInternalServerError || strings.Contains(w.Body.String(), "cred-a") {
		t.Fatalf("audit down: %d %s", w.Code, w.Body)
	}
}

// A citizen holding more certificates than MaxHoldings is told that the
// records about the older ones are not shown; one holding MaxHoldings
// exactly is not.
func TestTruncatedHoldingsSaid(t *testing.T) {
	f := newFixture(t)
	var many []activity.Holding
	for i := range activity.MaxHoldings + 1 {
		many = append(many, activity.Holding{Serial: fmt.Sprintf("0a%04x", i)})
	}
	oldest := many[activity.MaxHoldings].Serial
	f.log.holdings[civilA] = many
	f.log.holdings[civilB] = many[:activity.MaxHoldings]
	f.seed(t, audit.Entry{Actor: "officer-jane.doe", Action: "certificate.issue", Object: oldest, Outcome: "success"},
		audit.Entry{Actor: civilA, Action: "document.sign", Object: "cred-a", Outcome: "success"})
	p := f.page(t, civilA, "")
	if !p.Truncated || len(p.Entries) != 1 || p.Entries[0].Action != "document.sign" {
		t.Fatalf("more than %d certificates: truncated %v, %+v", activity.MaxHoldings, p.Truncated, p.Entries)
	}
	if p := f.page(t, civilB, ""); p.Truncated {
		t.Fatalf("%d certificates exactly: truncated", activity.MaxHoldings)
	}
	if w := f.get(civilB, ""); strings.Contains(w.Body.String(), "truncated") {
		t.Fatalf("truncated shown when false: %s", w.Body)
	}
}

// A staff member whose subject happens to be citizen A's civil number
// acts under the same actor: A never sees what that member did to others'
// certificates or in the officers' console, but still sees A's own
// sign-ins and A's own refused attempts.
func TestStaffSubjectEqualToACivilNumber(t *testing.T) {
	f := newFixture(t)
	f.seed(t, everyones()...)
	f.seed(t,
		audit.Entry{Actor: civilA, Action: "certificate.revoke", Object: "0bbb", Outcome: "success", Details: map[string]any{"reason": "keyCompromise"}}, // 10: staff, on B's
		audit.Entry{Actor: civilA, Action: "web.login", Object: "/ra/login", Outcome: "success"},                                                         // 11: staff console
		audit.Entry{Actor: civilA, Action: "certificate.read", Object: "/api/v1/certificates", Outcome: "refused",
			Details: map[string]any{"caller": map[string]any{"subject": civilA, "roles": []string{"registration-officer"}}}}, // 12: staff refused
		audit.Entry{Actor: civilA, Action: "web.login", Object: "/my/", Outcome: "success"}, // 13: A's own sign-in
		audit.Entry{Actor: civilA, Action: "document.sign", Object: "cred-b", Outcome: "refused",
			Details: map[string]any{"caller": map[string]any{"subject": civilA, "roles": []string{"citizen"}}}}, // 14: A's refused attempt
	)
	var got []int64
	for _, e := range f.page(t, civilA, "").Entries {
		got = append(got, e.Seq)
	}
	if fmt.Sprint(got) != "[14 13 9 8 7 6 5 3 1]" {
		t.Fatalf("A sees %v, want [14 13 9 8 7 6 5 3 1]: no record of the staff member's", got)
	}
}
