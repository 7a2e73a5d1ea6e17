package portal

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"net/http"
	"net/http/httptest"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/thiqa/thiqa/internal/audit"
	"github.com/thiqa/thiqa/internal/auth"
	"github.com/thiqa/thiqa/internal/outage"
	"github.com/thiqa/thiqa/policies"
)

// memAudit keeps the records appended.
type memAudit struct {
	mu      sync.Mutex
	entries []audit.Entry
	down    bool // appends fail
	outage  bool // appends fail with an outage (outage.Is): the disk full, the database down
}

func (m *memAudit) Append(_ context.Context, e audit.Entry) (audit.Record, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.down {
		return audit.Record{}, errors.New("the audit database is down")
	}
	if m.outage {
		return audit.Record{}, outage.Mark(errors.New("committing: database or disk is full (13)"))
	}
	m.entries = append(m.entries, e)
	return audit.Record{}, nil
}

func (m *memAudit) actions() []string {
	m.mu.Lock()
	defer m.mu.Unlock()
	var out []string
	for _, e := range m.entries {
		out = append(out, e.Action+":"+e.Outcome+":"+e.Actor)
	}
	return out
}

// fixture is a portal over a fake API that records who called what.
type fixture struct {
	p     *Portal
	h     http.Handler
	audit *memAudit
	clock time.Time
	calls []string
	// recheck is what Options.Recheck answers for every session.
	recheck error
	// answer, when set, answers the API calls instead of the default.
	answer http.HandlerFunc
	// nonce tells an oidcFixture's provider the nonce of the login.
	nonce func(string)
}

func newFixture(t testing.TB) *fixture {
	t.Helper()
	return newFixtureWith(t, nil)
}

// newFixtureWith is newFixture with the portal's options changed by opts
// (nil: none).
func newFixtureWith(t testing.TB, opts func(*Options)) *fixture {
	t.Helper()
	f := &fixture{audit: &memAudit{}, clock: time.Date(2026, 12, 3, 10, 0, 0, 0, time.UTC)}
	api := http.NewServeMux()
	api.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		who := "anonymous"
		// The portal passes the person through the context only.
		if r.Header.Get("Authorization") != "" {
			t.Errorf("the portal sent an Authorization header to %s", r.URL.Path)
		}
		f.calls = append(f.calls, r.Method+" "+r.URL.Path+" as "+who)
		if f.answer != nil {
			f.answer(w, r)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write([]byte(`{"credentialIDs":[],"credentialInfos":[]}`))
	})
	authn := func(r *http.Request) (*auth.Principal, error) {
		switch r.Header.Get("Authorization") {
		case "Bearer officer":
			return &auth.Principal{Subject: "officer-1", Roles: []policies.Role{policies.RoleRegistrationOfficer}}, nil
		case "Bearer citizen":
			return &auth.Principal{Subject: "12345678", CivilNumber: "12345678", Roles: []policies.Role{policies.RoleCitizen}}, nil
		case "Bearer officer-20min": // a token that expires in 20 minutes
			return &auth.Principal{Subject: "officer-2", Roles: []policies.Role{policies.RoleRegistrationOfficer}, Expires: f.clock.Add(20 * time.Minute)}, nil
		}
		return nil, auth.ErrInvalidCredentials
	}
	o := Options{API: api, Authenticate: authn, Audit: f.audit, Now: func() time.Time { return f.clock },
		Recheck: func(context.Context, *auth.Principal) error { return f.recheck }}
	if opts != nil {
		opts(&o)
	}
	p, err := New(o)
	if err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	p.Register(mux)
	f.p, f.h = p, mux
	return f
}

// client is one browser over the fixture's pages: it keeps one cookie jar.
type client struct {
	f       *fixture
	cookies map[string]string
}

func (f *fixture) client() *client { return &client{f: f, cookies: map[string]string{}} }

func (c *client) do(method, path string, form url.Values, hdr ...string) *httptest.ResponseRecorder {
	var r *http.Request
	if form != nil {
		r = httptest.NewRequest(method, path, strings.NewReader(form.Encode()))
		r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	} else {
		r = httptest.NewRequest(method, path, nil)
	}
	for i := 0; i+1 < len(hdr); i += 2 {
		r.Header.Set(hdr[i], hdr[i+1])
	}
	for k, v := range c.cookies {
		r.AddCookie(&http.Cookie{Name: k, Value: v})
	}
	w := httptest.NewRecorder()
	c.f.h.ServeHTTP(w, r)
	for _, ck := range w.Result().Cookies() {
		if ck.MaxAge < 0 {
			delete(c.cookies, ck.Name)
		} else {
			c.cookies[ck.Name] = ck.Value
		}
	}
	return w
}

var csrfField = regexp.MustCompile(`name="csrf" value="([^"]+)"`)

// csrf reads the CSRF token of the last page's first form.
func csrf(t *testing.T, w *httptest.ResponseRecorder) string {
	t.Helper()
	m := csrfField.FindStringSubmatch(w.Body.String())
	if m == nil {
		t.Fatalf("no CSRF field in:\n%s", w.Body.String())
	}
	return m[1]
}

// Every message a template asks for exists in both catalogues, and the
// keys built from values (statuses, levels, reasons, profiles, fields)
// too.
func TestCatalogueCoversTheTemplates(t *testing.T) {
	cat, err := loadCatalogue()
	if err != nil {
		t.Fatal(err)
	}
	re := regexp.MustCompile(`T "([a-z_.A-Z-]+)"`)
	names, _ := fs.Glob(files, "templates/*.html")
	for _, n := range names {
		raw, _ := files.ReadFile(n)
		for _, m := range re.FindAllStringSubmatch(string(raw), -1) {
			if _, ok := cat["en"][m[1]]; !ok {
				t.Errorf("%s asks for %q, which no catalogue has", n, m[1])
			}
		}
	}
	var built []string
	for _, s := range []string{"valid", "revoked", "expired"} {
		built = append(built, "status."+s)
	}
	for _, l := range levels {
		built = append(built, "level."+l)
	}
	for _, r := range append(citizenReasons, officerReasons...) {
		built = append(built, "reason."+r)
	}
	for _, r := range reasonNames {
		if r != "" {
			built = append(built, "reason."+r)
		}
	}
	for _, p := range issueProfiles {
		built = append(built, "profile."+p)
	}
	for _, f := range append(issueFields, "serialNumber") {
		built = append(built, "field."+f)
	}
	for _, k := range []string{"signing", "mobile-id", "seal"} {
		built = append(built, "kind."+k)
	}
	for _, k := range []string{"none", "not-set", "activation-pending", "set", "locked"} {
		built = append(built, "pinstate."+k)
	}
	for _, o := range []string{"success", "refused", "failure", "error"} {
		built = append(built, "outcome."+o)
	}
	for _, a := range activityActions {
		built = append(built, "activity."+a)
	}
	for _, b := range activityBy {
		built = append(built, "by."+b)
	}
	built = append(built, "method.mobile", "method.mtls", "activity.other")
	for _, i := range []string{"TOTAL-PASSED", "TOTAL-FAILED", "INDETERMINATE", ""} {
		built = append(built, "indication."+i)
	}
	for _, k := range built {
		for _, l := range Languages {
			if _, ok := cat[l][k]; !ok {
				t.Errorf("catalogue %s lacks %q", l, k)
			}
		}
	}
}

// Pages answer in the reader's language: Accept-Language, then the
// explicit choice, which is remembered.
func TestLanguageChoice(t *testing.T) {
	f := newFixture(t)
	c := f.client()
	if w := c.do("GET", "/", nil, "Accept-Language", "en-GB,en;q=0.9"); !strings.Contains(w.Body.String(), `<html lang="en" dir="ltr">`) {
		t.Fatalf("English reader: %.200s", w.Body.String())
	}
	if w := c.do("GET", "/", nil); !strings.Contains(w.Body.String(), `<html lang="ar" dir="rtl">`) {
		t.Fatalf("no preference: %.200s", w.Body.String())
	}
	c.do("GET", "/?lang=en", nil)
	if w := c.do("GET", "/my/", nil, "Accept-Language", "ar"); !strings.Contains(w.Body.String(), `<html lang="en" dir="ltr">`) {
		t.Fatalf("the remembered choice beats the header: %.200s", w.Body.String())
	}
	if got := formatDate("ar", time.Date(2026, 12, 3, 0, 0, 0, 0, time.UTC)); got != "٣ ديسمبر ٢٠٢٦" {
		t.Fatalf("Arabic date %q", got)
	}
	if got := formatDate("en", time.Date(2026, 12, 3, 0, 0, 0, 0, time.UTC)); got != "3 Dec 2026" {
		t.Fatalf("English date %q", got)
	}
}

// A POST without the session's CSRF token changes nothing (the API is
// never called), is refused in the page's language and is audited.
func TestForgedCSRFIsRefused(t *testing.T) {
	f := newFixture(t)
	c := f.client()
	w := c.do("GET", "/ra/?lang=en", nil)
	token := csrf(t, w)
	w = c.do("POST", "/ra/login", url.Values{"csrf": {"forged"}, "token": {"officer"}})
	if w.Code != http.StatusForbidden || !strings.Contains(w.Body.String(), "no longer valid") {
		t.Fatalf("forged token: %d %s", w.Code, w.Body.String())
	}
	if got := f.audit.actions(); len(got) != 1 || got[0] != "web.csrf:refused:anonymous" {
		t.Fatalf("audit: %v", got)
	}
	w = c.do("POST", "/ra/login", url.Values{"csrf": {token}, "token": {"officer"}})
	if w.Code != http.StatusSeeOther {
		t.Fatalf("officer sign-in: %d %s", w.Code, w.Body.String())
	}
	// The sign-in gave a new session and a new CSRF token: the old one
	// no longer works.
	w = c.do("POST", "/ra/revoke", url.Values{"csrf": {token}, "serial": {"01"}, "reason": {"keyCompromise"}, "confirm": {"yes"}})
	if w.Code != http.StatusForbidden {
		t.Fatalf("the pre-sign-in CSRF token after the sign-in: %d", w.Code)
	}
	if len(f.calls) != 0 {
		t.Fatalf("the API was called: %v", f.calls)
	}
}

// Sessions end after 15 idle minutes and an hour after the sign-in; a
// form of an ended session says so.
func TestSessionLifetimes(t *testing.T) {
	f := newFixture(t)
	c := f.client()
	token := csrf(t, c.do("GET", "/my/approve?lang=en", nil))
	if w := c.do("POST", "/my/approve/login", url.Values{"csrf": {token}, "token": {"citizen"}}); w.Code != http.StatusSeeOther {
		t.Fatalf("phone sign-in: %d %s", w.Code, w.Body.String())
	}
	w := c.do("GET", "/my/approve?lang=en", nil)
	token = csrf(t, w)
	for i := 0; i < 5; i++ { // active: 50 minutes
		f.clock = f.clock.Add(10 * time.Minute)
		if w := c.do("GET", "/my/approve?lang=en", nil); !strings.Contains(w.Body.String(), "12345678") {
			t.Fatalf("after %d minutes: %s", (i+1)*10, w.Body.String())
		}
	}
	f.clock = f.clock.Add(11 * time.Minute) // 61 minutes after the sign-in
	w = c.do("POST", "/my/approve", url.Values{"csrf": {token}, "session": {"s"}, "code": {"1"}, "pin": {"1"}})
	if w.Code != http.StatusForbidden || !strings.Contains(w.Body.String(), "session has expired") {
		t.Fatalf("an hour after the sign-in: %d %s", w.Code, w.Body.String())
	}
	// Idle: a fresh sign-in, then 16 minutes of nothing.
	token = csrf(t, c.do("GET", "/my/approve?lang=en", nil))
	c.do("POST", "/my/approve/login", url.Values{"csrf": {token}, "token": {"citizen"}})
	token = csrf(t, c.do("GET", "/my/approve?lang=en", nil))
	f.clock = f.clock.Add(16 * time.Minute)
	if w := c.do("POST", "/my/approve", url.Values{"csrf": {token}, "session": {"s"}, "code": {"1"}, "pin": {"1"}}); w.Code != http.StatusForbidden {
		t.Fatalf("16 idle minutes: %d", w.Code)
	}
	for _, call := range f.calls {
		if strings.Contains(call, "/oidc/mobile/approve") {
			t.Fatalf("an expired session approved a login: %v", f.calls)
		}
	}
}

// A session signed in with a token ends when the token expires, however
// active it is: the portal never extends a credential's life.
func TestSessionEndsWithItsCredential(t *testing.T) {
	f := newFixture(t)
	c := f.client()
	token := csrf(t, c.do("GET", "/ra/?lang=en", nil))
	if w := c.do("POST", "/ra/login", url.Values{"csrf": {token}, "token": {"officer-20min"}}); w.Code != http.StatusSeeOther {
		t.Fatalf("officer sign-in: %d %s", w.Code, w.Body.String())
	}
	for i := 0; i < 2; i++ { // active: 10 and 20 minutes in
		f.clock = f.clock.Add(10 * time.Minute)
		if w := c.do("GET", "/ra/?lang=en", nil); w.Code != http.StatusOK || !strings.Contains(w.Body.String(), "officer-2") {
			t.Fatalf("%d minutes in: %d %s", (i+1)*10, w.Code, w.Body.String())
		}
	}
	f.clock = f.clock.Add(time.Minute) // the token expired a minute ago
	if w := c.do("GET", "/ra/?lang=en", nil); strings.Contains(w.Body.String(), "officer-2") {
		t.Fatalf("the session outlived its token: %d %s", w.Code, w.Body.String())
	}
}

// The credential of a session is rechecked on every request: once it no
// longer holds (a revoked officer certificate) the session ends, audited,
// and a POST is refused as from an expired session; while its status
// cannot be learnt, the pages answer 503 and keep the session.
func TestSessionEndsWhenItsCredentialIsRevoked(t *testing.T) {
	f := newFixture(t)
	c := f.client()
	token := csrf(t, c.do("GET", "/ra/?lang=en", nil))
	if w := c.do("POST", "/ra/login", url.Values{"csrf": {token}, "token": {"officer"}}); w.Code != http.StatusSeeOther {
		t.Fatalf("officer sign-in: %d %s", w.Code, w.Body.String())
	}
	w := c.do("GET", "/ra/?lang=en", nil)
	token = csrf(t, w)
	if !strings.Contains(w.Body.String(), "officer-1") {
		t.Fatalf("signed in: %s", w.Body.String())
	}
	f.recheck = fmt.Errorf("%w: checking the client certificate: store down", auth.ErrUnavailable)
	if w := c.do("GET", "/ra/?lang=en", nil); w.Code != http.StatusServiceUnavailable {
		t.Fatalf("status unknown: %d", w.Code)
	}
	f.recheck = fmt.Errorf("%w: %w: certificate revoked", auth.ErrInvalidCredentials, auth.ErrCertificateRefused)
	if w := c.do("POST", "/ra/revoke", url.Values{"csrf": {token}, "serial": {"01"}, "reason": {"keyCompromise"}}); w.Code != http.StatusForbidden ||
		!strings.Contains(w.Body.String(), "session has expired") {
		t.Fatalf("a POST after the revocation: %d %s", w.Code, w.Body.String())
	}
	if !slices.Contains(f.audit.actions(), "web.session:refused:officer-1") {
		t.Fatalf("the end of the session is not audited: %v", f.audit.actions())
	}
	f.recheck = nil // the session is gone for good, whatever the credential says now
	if w := c.do("GET", "/ra/?lang=en", nil); strings.Contains(w.Body.String(), "officer-1") {
		t.Fatalf("the session outlived the revocation: %s", w.Body.String())
	}
	for _, call := range f.calls {
		if strings.Contains(call, "revoke") {
			t.Fatalf("a revoked officer reached the API: %v", f.calls)
		}
	}
}

// A citizen is refused at the officer console (audited), an officer at
// the citizen portal, and a citizen's token cannot open the console.
func TestRolesOfThePages(t *testing.T) {
	f := newFixture(t)
	c := f.client()
	token := csrf(t, c.do("GET", "/my/approve?lang=en", nil))
	c.do("POST", "/my/approve/login", url.Values{"csrf": {token}, "token": {"citizen"}})
	for _, p := range []string{"/ra/?lang=en", "/ra/certificate?serial=01&lang=en", "/ra/issue?lang=en"} {
		if w := c.do("GET", p, nil); w.Code != http.StatusForbidden || !strings.Contains(w.Body.String(), "registration officers only") {
			t.Fatalf("citizen at %s: %d", p, w.Code)
		}
	}
	refused := 0
	for _, a := range f.audit.actions() {
		if a == "web.ra:refused:12345678" {
			refused++
		}
	}
	if refused != 3 {
		t.Fatalf("audit: %v", f.audit.actions())
	}
	o := f.client()
	token = csrf(t, o.do("GET", "/ra/?lang=en", nil))
	if w := o.do("POST", "/ra/login", url.Values{"csrf": {token}, "token": {"citizen"}}); w.Code != http.StatusForbidden || !strings.Contains(w.Body.String(), "not a registration officer") {
		t.Fatalf("a citizen's token at the console: %d", w.Code)
	}
	token = csrf(t, o.do("GET", "/ra/?lang=en", nil))
	o.do("POST", "/ra/login", url.Values{"csrf": {token}, "token": {"officer"}})
	for _, p := range []string{"/my/?lang=en", "/my/activity?lang=en"} {
		if w := o.do("GET", p, nil); w.Code != http.StatusForbidden {
			t.Fatalf("an officer at %s: %d", p, w.Code)
		}
	}
	if w := o.do("GET", "/ra/certificate?serial=zz%3Cscript%3E&lang=en", nil); w.Code != http.StatusBadRequest || strings.Contains(w.Body.String(), "<script>") {
		t.Fatalf("a bad serial: %d", w.Code)
	}
}

// The answers forbid scripts, framing and sniffing; cookies are
// HttpOnly, SameSite=Lax, Secure and __Host- under TLS.
func TestHeadersAndCookies(t *testing.T) {
	f := newFixture(t)
	w := f.client().do("GET", "/ra/", nil)
	h := w.Header()
	if h.Get("Content-Security-Policy") != CSP || !strings.Contains(CSP, "default-src 'none'") || strings.Contains(CSP, "script-src") ||
		h.Get("X-Frame-Options") != "DENY" || h.Get("Cache-Control") != "no-store" {
		t.Fatalf("headers: %v", h)
	}
	ck := w.Result().Cookies()
	if len(ck) != 1 || !ck[0].HttpOnly || ck[0].SameSite != http.SameSiteLaxMode || ck[0].Secure || ck[0].Name != "thiqa-session" {
		t.Fatalf("cookie: %+v", ck)
	}
	f.p.o.Secure = true
	w = f.client().do("GET", "/ra/", nil)
	if ck := w.Result().Cookies(); len(ck) != 1 || !ck[0].Secure || ck[0].Name != "__Host-thiqa-session" || ck[0].Path != "/" {
		t.Fatalf("TLS cookie: %+v", ck)
	}
	// The front page gives an anonymous visitor no session.
	if w := f.client().do("GET", "/", nil); len(w.Result().Cookies()) != 0 {
		t.Fatalf("the front page set %v", w.Result().Cookies())
	}
}

// A full store drops anonymous sessions before signed-in ones.
func TestSessionStoreBound(t *testing.T) {
	now := time.Now()
	s := newSessions(time.Hour, time.Hour, 3, func() time.Time { return now })
	_, signedIn := s.create()
	se, _ := s.get(signedIn)
	s.login(nil, &auth.Principal{Subject: "x"}, "citizen")
	_ = se
	var kept string
	for i := 0; i < 10; i++ {
		now = now.Add(time.Second)
		_, kept = s.create()
	}
	s.mu.Lock()
	n, who := len(s.byKey), 0
	for _, v := range s.byKey {
		if v.who != nil {
			who++
		}
	}
	s.mu.Unlock()
	if n != 3 || who != 1 {
		t.Fatalf("%d sessions, %d signed in", n, who)
	}
	if _, ok := s.get(kept); !ok {
		t.Fatal("the newest session was dropped")
	}
	if _, ok := s.get("not base64!"); ok {
		t.Fatal("a malformed cookie found a session")
	}
}

// The documents a session holds are released when it ends, however it
// ends: sign-out, expiry or eviction.
func TestHeldDocumentsAreReleased(t *testing.T) {
	f := newFixture(t)
	p := f.p
	se, _ := p.ses.create()
	doc := &signedDocument{upload: make([]byte, 1000)}
	if !p.hold(doc.size()) {
		t.Fatal("hold refused")
	}
	p.ses.locked(func() { se.signed = doc })
	f.clock = f.clock.Add(time.Hour) // expired: the next create purges it
	p.ses.create()
	if got := p.held.Load(); got != 0 {
		t.Fatalf("held after expiry: %d", got)
	}
	if p.hold(p.o.MaxHeldBytes + 1) {
		t.Fatal("a document over the budget was held")
	}
}

// Expired sessions are swept in the background, with no new session to
// trigger it: the document an abandoned session held is released, a live
// session stays, and the sweep stops when its context ends.
func TestSweepSessions(t *testing.T) {
	f := newFixture(t)
	p := f.p
	abandoned, _ := p.ses.create()
	doc := &signedDocument{upload: make([]byte, 1000)}
	if !p.hold(doc.size()) {
		t.Fatal("hold refused")
	}
	p.ses.locked(func() { abandoned.signed = doc })
	f.clock = f.clock.Add(p.o.SessionIdle / 2)
	_, live := p.ses.create()
	f.clock = f.clock.Add(p.o.SessionIdle/2 + time.Second) // abandoned: idle too long; live: not

	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan struct{})
	go func() {
		p.SweepSessions(ctx, time.Millisecond)
		close(done)
	}()
	deadline := time.Now().Add(10 * time.Second)
	for p.held.Load() != 0 {
		if time.Now().After(deadline) {
			t.Fatalf("the expired session still holds %d bytes", p.held.Load())
		}
		time.Sleep(time.Millisecond)
	}
	cancel()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("SweepSessions did not return when its context ended")
	}
	p.ses.locked(func() {
		if p.ses.liveLocked(abandoned) || len(p.ses.byKey) != 1 {
			t.Errorf("after the sweep: abandoned live %v, %d sessions", p.ses.liveLocked(abandoned), len(p.ses.byKey))
		}
	})
	if _, ok := p.ses.get(live); !ok {
		t.Fatal("the sweep ended a live session")
	}
}
