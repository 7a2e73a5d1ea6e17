package portal

import (
	"net/http"
	"net/url"
	"strings"
	"testing"
)

// activityAnswer is GET /api/v1/me/activity's answer in the fixture: a
// page with every field, an action the pages do not know and a cursor.
const activityAnswer = `{"entries":[
{"seq":120,"time":"2026-12-03T09:00:00Z","action":"oidc.login","outcome":"success","description":"Login","by":"you","client":"Tax <portal>","method":"mobile"},
{"seq":110,"time":"2026-12-03T08:00:00Z","action":"document.sign","outcome":"success","description":"Signed","by":"you","credential":"cred-a","documentDigest":"abab","level":"B-LT"},
{"seq":100,"time":"2026-12-02T08:00:00Z","action":"credential.pin.reset","outcome":"success","description":"Reset","by":"registration-officer","credential":"cred-a"},
{"seq":90,"time":"2026-12-01T08:00:00Z","action":"certificate.revoke","outcome":"refused","description":"Revoked","by":"someone-else","serial":"0aaa","reason":"keyCompromise"},
{"seq":80,"time":"2026-12-01T07:00:00Z","action":"oidc.login.deny-all","outcome":"success","description":"Denied","by":"you","denied":2},
{"seq":70,"time":"2026-12-01T06:00:00Z","action":"some.future.thing","outcome":"success","description":"Other recorded activity"}
],"nextBefore":70}`

// activityFixture signs a citizen in on the phone side and answers the
// activity API; calls are the queries the API saw.
func activityFixture(t *testing.T) (*fixture, *client, *[]string) {
	t.Helper()
	f := newFixture(t)
	var calls []string
	f.answer = func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/api/v1/me/activity" {
			w.Header().Set("Content-Type", "application/json")
			if strings.Contains(r.URL.Path, "credentials") {
				_, _ = w.Write([]byte(`{"credentialIDs":[],"credentialInfos":[],"credentials":[]}`))
				return
			}
			_, _ = w.Write([]byte(`[]`))
			return
		}
		calls = append(calls, r.URL.RawQuery)
		if r.URL.Query().Get("before") == "x" {
			w.Header().Set("Content-Type", "application/problem+json")
			w.WriteHeader(http.StatusBadRequest)
			_, _ = w.Write([]byte(`{"status":400,"detail":"before is the seq of a record"}`))
			return
		}
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write([]byte(activityAnswer))
	}
	c := f.client()
	token := csrf(t, c.do("GET", "/my/approve?lang=en", nil))
	c.do("POST", "/my/approve/login", url.Values{"csrf": {token}, "token": {"citizen"}})
	return f, c, &calls
}

// The page shows the API's page in the reader's language: each action in
// words, who as a role, the allowed details escaped, a link to the older
// page carrying the cursor; it is linked from the home page.
func TestActivityPage(t *testing.T) {
	f, c, calls := activityFixture(t)
	w := c.do("GET", "/my/activity?lang=en", nil)
	body := w.Body.String()
	if w.Code != http.StatusOK {
		t.Fatalf("the page: %d\n%s", w.Code, body)
	}
	for _, want := range []string{"<title>My activity", "Sign-in to a portal with your digital ID", "Tax &lt;portal&gt;", "Mobile ID",
		"A registration officer", "Someone else", "Lost, stolen", "Refused", "Sign-ins denied: 2", "Long-term (PAdES B-LT",
		`Other recorded activity <code dir="ltr">some.future.thing</code>`, `href="/my/activity?before=70" id="older"`, `<code dir="ltr" class="digest">abab</code>`} {
		if !strings.Contains(body, want) {
			t.Errorf("the page lacks %q", want)
		}
	}
	if strings.Contains(body, `id="newest"`) {
		t.Errorf("the newest page links to itself")
	}
	w = c.do("GET", "/my/activity?before=70&lang=ar", nil)
	body = w.Body.String()
	if w.Code != http.StatusOK || !strings.Contains(body, "تسجيل دخول إلى بوابة بهويتك الرقمية") || !strings.Contains(body, `id="newest"`) || !strings.Contains(body, `dir="rtl"`) {
		t.Fatalf("the older page in Arabic: %d\n%s", w.Code, body)
	}
	if strings.Join(*calls, " ") != " before=70" {
		t.Fatalf("the API was asked %q", *calls)
	}
	for _, call := range f.calls {
		if strings.Contains(call, "activity") && !strings.HasPrefix(call, "GET /api/v1/me/activity") {
			t.Fatalf("an unexpected call: %s", call)
		}
	}
	if home := c.do("GET", "/my/?lang=en", nil).Body.String(); !strings.Contains(home, `href="/my/activity" id="activity-link"`) {
		t.Fatalf("the home page does not link to the activity:\n%s", home)
	}
}

// A cursor the API refuses is the page again (400) saying so, with the
// way back to the newest page; a visitor not signed in gets the sign-in
// page and no call.
func TestActivityPageRefusals(t *testing.T) {
	_, c, calls := activityFixture(t)
	w := c.do("GET", "/my/activity?before=x&lang=en", nil)
	body := w.Body.String()
	if w.Code != http.StatusBadRequest || !strings.Contains(body, "<title>Error: ") || !strings.Contains(body, `role="alert" id="error">This page of your activity does not exist`) ||
		!strings.Contains(body, `id="newest"`) || strings.Contains(body, `id="activity"`) {
		t.Fatalf("a bad cursor: %d\n%s", w.Code, body)
	}
	f := newFixture(t)
	anon := f.client()
	w = anon.do("GET", "/my/activity?lang=en", nil)
	if w.Code != http.StatusOK || !strings.Contains(w.Body.String(), "Sign in with digital ID") || len(f.calls) != 0 {
		t.Fatalf("not signed in: %d %v\n%s", w.Code, f.calls, w.Body)
	}
	if len(*calls) != 1 {
		t.Fatalf("calls: %v", *calls)
	}
}

// A citizen holding more certificates than the API looks up is told, in
// both languages, that the records about the older ones are not shown.
func TestActivityPageTruncated(t *testing.T) {
	f, c, _ := activityFixture(t)
	if body := c.do("GET", "/my/activity?lang=en", nil).Body.String(); strings.Contains(body, `id="truncated"`) {
		t.Fatalf("a page not truncated says so:\n%s", body)
	}
	answer := f.answer
	f.answer = func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/api/v1/me/activity" {
			answer(w, r)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write([]byte(`{"entries":[],"truncated":true}`))
	}
	for lang, want := range map[string]string{"en": "only the records about the 100 most recent", "ar": "أحدث ١٠٠ شهادة"} {
		w := c.do("GET", "/my/activity?lang="+lang, nil)
		if body := w.Body.String(); w.Code != http.StatusOK || !strings.Contains(body, `<p class="hint" id="truncated">`) || !strings.Contains(body, want) {
			t.Fatalf("%s: %d\n%s", lang, w.Code, body)
		}
	}
}

// A certificate's type on the activity page is named in the reader's
// language (it showed the profile's code, citizen-auth, on the Arabic
// page); a profile the pages do not name still shows as its code.
func TestActivityPageNamesTheProfile(t *testing.T) {
	f, c, _ := activityFixture(t)
	inner := f.answer
	f.answer = func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/api/v1/me/activity" {
			inner(w, r)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write([]byte(`{"entries":[
{"seq":20,"time":"2026-12-03T09:00:00Z","action":"certificate.issue","outcome":"success","by":"registration-officer","serial":"0aaa","profile":"citizen-auth"},
{"seq":10,"time":"2026-12-03T08:00:00Z","action":"certificate.issue","outcome":"success","by":"registration-officer","serial":"0bbb","profile":"future-profile"}]}`))
	}
	body := c.do("GET", "/my/activity?lang=ar", nil).Body.String()
	for _, want := range []string{"النوع: شهادة مصادقة للمواطن (الهوية المتنقلة)", `النوع: <code dir="ltr">future-profile</code>`} {
		if !strings.Contains(body, want) {
			t.Errorf("the Arabic page lacks %q", want)
		}
	}
	if strings.Contains(body, "citizen-auth") {
		t.Errorf("the Arabic page shows the profile's code:\n%s", body)
	}
}

// A run of the citizen's own readings (every visit of /my/ lists the
// credentials) is one row saying how many times, so that a signature or
// an officer's revocation between them is not lost among fifty "Your
// credentials listed"; readings apart, refused or with details stay rows
// of their own.
func TestActivityPageFoldsReadings(t *testing.T) {
	f, c, _ := activityFixture(t)
	inner := f.answer
	f.answer = func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/api/v1/me/activity" {
			inner(w, r)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write([]byte(`{"entries":[
{"seq":9,"time":"2026-12-03T09:09:00Z","action":"credential.list.own","outcome":"success","by":"you"},
{"seq":8,"time":"2026-12-03T09:08:00Z","action":"credential.list","outcome":"success","by":"you"},
{"seq":7,"time":"2026-12-03T09:07:00Z","action":"credential.list.own","outcome":"success","by":"you"},
{"seq":6,"time":"2026-12-03T09:06:00Z","action":"certificate.revoke","outcome":"success","by":"registration-officer","serial":"0aaa","reason":"keyCompromise"},
{"seq":5,"time":"2026-12-03T09:05:00Z","action":"credential.list.own","outcome":"success","by":"you"},
{"seq":4,"time":"2026-12-03T09:04:00Z","action":"credential.list.own","outcome":"refused","by":"you"},
{"seq":3,"time":"2026-12-03T09:03:00Z","action":"credential.list.own","outcome":"success","by":"you"}]}`))
	}
	body := c.do("GET", "/my/activity?lang=ar", nil).Body.String()
	var rows []string
	for _, part := range strings.Split(body, `data-seq="`)[1:] {
		seq, _, _ := strings.Cut(part, `"`)
		rows = append(rows, seq)
	}
	if got := strings.Join(rows, ","); got != "9,6,5,4,3" {
		t.Fatalf("rows %s, want 9,6,5,4,3:\n%s", got, body)
	}
	if !strings.Contains(body, "(عدد المرات: ٣)") || strings.Count(body, "عدد المرات") != 1 {
		t.Fatalf("the folded row does not say 3 times, once:\n%s", body)
	}
}

// A folded run of readings says when it began as well as when it ended: a
// reading at night among the day's is the clue to a stolen session. A
// reading whose details differ (here a sign-in method the API named)
// stays a row of its own.
func TestActivityPageFoldedRowShowsFirstTime(t *testing.T) {
	f, c, _ := activityFixture(t)
	inner := f.answer
	f.answer = func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/api/v1/me/activity" {
			inner(w, r)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write([]byte(`{"entries":[
{"seq":9,"time":"2026-12-03T09:09:00Z","action":"credential.list.own","outcome":"success","by":"you"},
{"seq":8,"time":"2026-12-03T03:08:00Z","action":"credential.list","outcome":"success","by":"you"},
{"seq":7,"time":"2026-12-03T03:07:00Z","action":"credential.list","outcome":"success","by":"you","method":"mtls"},
{"seq":6,"time":"2026-12-03T03:06:00Z","action":"credential.list","outcome":"success","by":"you"}]}`))
	}
	for lang, want := range map[string]string{
		"en": "09:09 UTC <small class=\"times\">(the first: 3 Dec 2026, 03:08 UTC)</small>",
		"ar": "(أولها: ٣ ديسمبر ٢٠٢٦، ٠٣:٠٨ \u200fUTC)",
	} {
		body := c.do("GET", "/my/activity?lang="+lang, nil).Body.String()
		if !strings.Contains(body, want) {
			t.Errorf("%s: the folded row lacks %q:\n%s", lang, want, body)
		}
		var rows []string
		for _, part := range strings.Split(body, `data-seq="`)[1:] {
			seq, _, _ := strings.Cut(part, `"`)
			rows = append(rows, seq)
		}
		if got := strings.Join(rows, ","); got != "9,7,6" {
			t.Errorf("%s: rows %s, want 9,7,6", lang, got)
		}
	}
}
