package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	cdproto "github.com/chromedp/cdproto/cdp"
	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/chromedp"
	"github.com/chromedp/chromedp/kb"

	"github.com/thiqa/thiqa/ca"
	"github.com/thiqa/thiqa/internal/testenv"
)

// axeVersion is the independent accessibility checker the pages are held to.
const axeVersion = "axe-core@4.14.1"

// axeTags are the rule sets of WCAG 2.1 level A and AA.
var axeTags = []string{"wcag2a", "wcag2aa", "wcag21a", "wcag21aa"}

// a11yWidths are a phone's and a desktop's screen widths, in CSS pixels.
var a11yWidths = []int64{390, 1280}

// a11yFinding is one failed check on one page.
type a11yFinding struct {
	page, lang, rule, target, detail string
	widths                           []int64
}

// a11yChecker runs axe-core and the keyboard walk on pages and collects
// what fails, so that one run lists every problem.
type a11yChecker struct {
	t        *testing.T
	axe      string
	findings map[string]*a11yFinding
	order    []string
	pages    map[string]int // page (lang) -> findings
	checked  []string
	// errors are the pages that show an error: the field it is about
	// ("" when it is about the whole form or request).
	errors map[string]string
	// spent is the time each kind of check took, for the log.
	spent map[string]time.Duration
}

func newA11yChecker(t *testing.T) *a11yChecker {
	dir := testenv.NPMPackages(t, axeVersion)
	src, err := os.ReadFile(filepath.Join(dir, "node_modules", "axe-core", "axe.min.js"))
	if err != nil {
		testenv.Missing(t, "axe-core: %v", err)
	}
	return &a11yChecker{t: t, axe: string(src), findings: map[string]*a11yFinding{}, pages: map[string]int{}, errors: map[string]string{}, spent: map[string]time.Duration{}}
}

func (c *a11yChecker) add(page, lang, rule, target, detail string, width int64) {
	key := strings.Join([]string{page, lang, rule, target}, "\x00")
	f, ok := c.findings[key]
	if !ok {
		f = &a11yFinding{page: page, lang: lang, rule: rule, target: target, detail: detail}
		c.findings[key] = f
		c.order = append(c.order, key)
		c.pages[page+" ("+lang+")"]++
	}
	f.widths = append(f.widths, width)
}

// check runs every check on the page the browser shows, named page, at a
// phone's and a desktop's width; lang is the page's language ("" reads it
// from the page).
func (c *a11yChecker) check(b *browser, page, lang string) {
	c.t.Helper()
	if lang == "" {
		lang = b.eval(`document.documentElement.lang`)
	}
	c.checked = append(c.checked, page+" ("+lang+")")
	// The keyboard first: nothing has moved the focus since the page loaded.
	start := time.Now()
	c.keyboard(b, page, lang)
	c.spent["keyboard"] += time.Since(start)
	start = time.Now()
	for _, w := range a11yWidths {
		b.run("viewport", chromedp.EmulateViewport(w, 844))
		c.axeRun(b, page, lang, w)
		// A table the CSS lays out as blocks (on a phone) keeps its meaning for
		// screen readers that drop it then (Safari's) only by explicit roles.
		for _, id := range strings.Fields(b.eval(`[...document.querySelectorAll("table")].filter(t => getComputedStyle(t).display !== "table" &&
			(t.getAttribute("role") !== "table" || [...t.querySelectorAll("td")].some(d => d.getAttribute("role") !== "cell") || [...t.querySelectorAll("th")].some(h => h.getAttribute("role") !== "columnheader" && h.getAttribute("role") !== "rowheader"))).map(t => "table" + (t.id ? "#" + t.id : "")).join(" ")`)) {
			c.add(page, lang, "table-semantics", id, "laid out as blocks without role=table/row/cell/columnheader", w)
		}
		if d := os.Getenv("THIQA_TEST_SCREENSHOTS"); d != "" {
			ctx, cancel := context.WithTimeout(b.ctx, 60*time.Second)
			png, err := chromedp.Run(ctx, chromedp.FullScreenshot(100))
			cancel()
			if err != nil {
				c.t.Fatalf("screenshot: %v", err)
			}
			if err := os.WriteFile(filepath.Join(d, fmt.Sprintf("a11y-%s-%s-%d.png", page, lang, w)), png, 0o644); err != nil {
				c.t.Fatal(err)
			}
		}
	}
	c.spent["axe"] += time.Since(start)
	start = time.Now()
	// Reflow (WCAG 1.4.10): at 320 CSS pixels nothing needs sideways scrolling.
	b.run("viewport", chromedp.EmulateViewport(320, 844))
	if sw := b.eval(`String(document.documentElement.scrollWidth)`); sw != "320" {
		c.add(page, lang, "reflow", "html", "the page is "+sw+" px wide on a 320 px screen", 320)
	}
	b.run("viewport", chromedp.EmulateViewport(1280, 900))
	c.fieldEdges(b, page, lang)
	if field, ok := c.errors[page]; ok {
		c.errorTied(b, page, lang, field)
	}
	c.spent["other"] += time.Since(start)
	b.run("viewport", chromedp.EmulateViewport(1280, 900))
}

// axeRun injects axe-core (once per document) and runs the WCAG 2.1 A/AA rules.
func (c *a11yChecker) axeRun(b *browser, page, lang string, width int64) {
	c.t.Helper()
	if b.eval(`typeof window.axe === "undefined" ? "no" : ""`) == "no" {
		ctx, cancel := context.WithTimeout(b.ctx, 30*time.Second)
		_, err := chromedp.Run(ctx, chromedp.Evaluate[any](c.axe+"\n;undefined"))
		cancel()
		if err != nil {
			c.t.Fatalf("injecting axe-core into %s: %v", page, err)
		}
	}
	tags, _ := json.Marshal(axeTags)
	ctx, cancel := context.WithTimeout(b.ctx, 60*time.Second)
	defer cancel()
	out, err := chromedp.Run(ctx, chromedp.Evaluate[string](`axe.run(document, {runOnly: {type: "tag", values: `+string(tags)+`}, resultTypes: ["violations"]}).then(r =>
		JSON.stringify(r.violations.map(v => ({id: v.id, help: v.help, nodes: v.nodes.map(n => ({target: n.target.join(" "), summary: (n.failureSummary || "").replace(/\s+/g, " ")}))}))))`,
		chromedp.EvalAwaitPromise))
	if err != nil {
		c.t.Fatalf("running axe-core on %s: %v", page, err)
	}
	var vs []struct {
		ID, Help string
		Nodes    []struct{ Target, Summary string }
	}
	if err := json.Unmarshal([]byte(out), &vs); err != nil {
		c.t.Fatalf("axe-core's answer on %s: %v", page, err)
	}
	for _, v := range vs {
		for _, n := range v.Nodes {
			c.add(page, lang, v.ID, n.Target, v.Help+": "+n.Summary, width)
		}
	}
}

// fieldEdgesProbe finds text fields, selects and buttons whose edge is
// what shows them as controls (no text of their own) and whose border
// has less than 3:1 contrast with what is around them (WCAG 1.4.11,
// which axe-core does not check).
const fieldEdgesProbe = `(() => {
  const rgb = c => { const m = c.match(/rgba?\(([^)]+)\)/); if (!m) return null; const p = m[1].split(/[ ,\/]+/).filter(Boolean).map(Number); return {r: p[0], g: p[1], b: p[2], a: p.length > 3 ? p[3] : 1}; };
  const lum = c => { const f = v => { v /= 255; return v <= 0.03928 ? v / 12.92 : Math.pow((v + 0.055) / 1.055, 2.4); }; return 0.2126 * f(c.r) + 0.7152 * f(c.g) + 0.0722 * f(c.b); };
  const ratio = (a, b) => { const x = lum(a), y = lum(b); return (Math.max(x, y) + 0.05) / (Math.min(x, y) + 0.05); };
  const behind = e => { for (let p = e.parentElement; p; p = p.parentElement) { const c = rgb(getComputedStyle(p).backgroundColor); if (c && c.a > 0) return c; } return {r: 255, g: 255, b: 255, a: 1}; };
  const out = [];
  for (const e of document.querySelectorAll('input:not([type=hidden]):not([type=file]):not([type=checkbox]):not([type=radio]), select, textarea')) {
    if (!e.checkVisibility()) continue;
    const s = getComputedStyle(e), border = rgb(s.borderTopColor), fill = rgb(s.backgroundColor), around = behind(e);
    if (!border || parseFloat(s.borderTopWidth) === 0) { out.push({t: e.id ? "#" + e.id : e.name, d: "no border"}); continue; }
    const edge = Math.max(ratio(border, around), fill && fill.a > 0 ? ratio(fill, around) : 0);
    if (edge < 3) out.push({t: e.id ? "#" + e.id : e.tagName.toLowerCase() + "[name=" + e.name + "]", d: "its edge has " + edge.toFixed(2) + ":1 contrast with the background, want 3:1"});
  }
  return JSON.stringify(out);
})()`

func (c *a11yChecker) fieldEdges(b *browser, page, lang string) {
	c.t.Helper()
	var out []struct{ T, D string }
	if err := json.Unmarshal([]byte(b.eval(fieldEdgesProbe)), &out); err != nil {
		c.t.Fatalf("field edges on %s: %v", page, err)
	}
	for _, o := range out {
		c.add(page, lang, "non-text-contrast", o.T, o.D, 1280)
	}
}

// errorTied checks that the error message the page shows (#error or
// #flash) is announced (role=alert), that the page's title starts by
// saying there is an error, and that the field it is about, if any, is
// marked invalid and described by the message (WCAG 3.3.1, 4.1.3).
func (c *a11yChecker) errorTied(b *browser, page, lang, field string) {
	c.t.Helper()
	got := b.eval(fmt.Sprintf(`(() => {
  const m = document.getElementById("error") || document.getElementById("flash"), f = %q ? document.querySelector(%q) : null;
  if (!m) return "no error message (#error or #flash) shown";
  if (m.getAttribute("role") !== "alert") return "the error message is not role=alert";
  if (!document.title.startsWith(%q === "ar+en" ? "Error · خطأ:" : {ar: "خطأ:", en: "Error:"}[document.documentElement.lang])) return "the title does not say there is an error: " + document.title;
  if (%q === "") return "";
  if (!f) return "no field %s";
  if (f.getAttribute("aria-invalid") !== "true") return "the field is not aria-invalid";
  if (!(f.getAttribute("aria-describedby") || "").split(/\s+/).includes("error")) return "the field is not aria-describedby the error message";
  return "";
})()`, field, field, lang, field, field))
	if got != "" {
		c.add(page, lang, "error-message", field, got, 1280)
	}
}

// keyboardProbe lists the elements Tab should reach, in document order,
// marks a starting point before the first of them, and records where the
// focus is at every key press (keyboardStep's answer, read back at once by
// keyboardSteps): a press comes once the previous Tab has moved the focus
// and scrolled it into view, so the walk needs no round trip per Tab.
const keyboardProbe = `(() => {
  const sel = 'a[href], area[href], button, input:not([type=hidden]), select, textarea, summary, iframe, [tabindex], [contenteditable=""], [contenteditable=true]';
  const shown = e => e.checkVisibility({visibilityProperty: true}) && !e.closest("[inert]");
  const all = [...document.querySelectorAll(sel)].filter(e => !e.disabled && e.tabIndex >= 0 && shown(e));
  const positive = all.filter(e => e.tabIndex > 0).map(e => e.outerHTML.slice(0, 80));
  window.__a11yTab = all;
  window.__a11ySteps = [];
  if (!window.__a11yListening) {
    window.__a11yListening = true;
    window.addEventListener("keydown", () => window.__a11ySteps.push(` + keyboardStep + `), true);
  }
  const start = document.createElement("span");
  start.tabIndex = -1;
  start.id = "__a11y-start";
  document.body.prepend(start);
  start.focus();
  return JSON.stringify({count: all.length, positive});
})()`

// keyboardStep reports where the focus is and whether it can be seen.
const keyboardStep = `(() => {
  const e = document.activeElement;
  const list = window.__a11yTab || [];
  if (!e || e === document.body || e === document.documentElement) return {index: -1};
  const name = e.tagName.toLowerCase() + (e.id ? "#" + e.id : "") + (e.name ? "[name=" + e.name + "]" : "") + (e.getAttribute("href") ? "[href=" + e.getAttribute("href") + "]" : "");
  const s = getComputedStyle(e);
  const outline = s.outlineStyle !== "none" && parseFloat(s.outlineWidth) > 0;
  const shadow = s.boxShadow && s.boxShadow !== "none";
  const r = e.getBoundingClientRect();
  const inView = r.width > 0 && r.height > 0 && r.bottom > 0 && r.right > 0 && r.top < innerHeight && r.left < innerWidth;
  return {index: list.indexOf(e), name, visible: outline || shadow, inView, focusVisible: e.matches(":focus-visible")};
})()`

// keyboardSteps is where the focus was after each Tab: the state recorded
// at each later press (the first press found the starting point), then
// the state after the last Tab.
const keyboardSteps = `JSON.stringify(window.__a11ySteps.slice(1).concat([` + keyboardStep + `]))`

// keyboard walks the page with Tab: every element that takes input is
// reached once, in document order (no positive tabindex), shows a focus
// indicator and is scrolled into view, and Tab leaves the last one (no trap).
func (c *a11yChecker) keyboard(b *browser, page, lang string) {
	c.t.Helper()
	b.run("viewport", chromedp.EmulateViewport(1280, 900))
	var probe struct {
		Count    int
		Positive []string
	}
	if err := json.Unmarshal([]byte(b.eval(keyboardProbe)), &probe); err != nil {
		c.t.Fatalf("keyboard probe on %s: %v", page, err)
	}
	for _, p := range probe.Positive {
		c.add(page, lang, "keyboard-order", p, "a positive tabindex changes the Tab order", 1280)
	}
	// Count+1 presses: to every element, and past the last one.
	tabs := make([]chromedp.Action[chromedp.Void], probe.Count+1)
	for i := range tabs {
		tabs[i] = chromedp.KeyEvent(kb.Tab)
	}
	b.run("tab", tabs...)
	var steps []struct {
		Index                         int
		Name                          string
		Visible, InView, FocusVisible bool
	}
	if err := json.Unmarshal([]byte(b.eval(keyboardSteps)), &steps); err != nil {
		c.t.Fatalf("keyboard steps on %s: %v", page, err)
	}
	if len(steps) != probe.Count+1 {
		c.t.Fatalf("keyboard walk on %s: %d key presses seen, want %d", page, len(steps), probe.Count+1)
	}
	next := 0
	var seen []string
	for i, st := range steps {
		if i == probe.Count {
			// Past the last element the focus leaves the page or wraps to the first.
			if st.Index > 0 {
				c.add(page, lang, "keyboard-trap", st.Name, fmt.Sprintf("Tab after the last of %d elements stays in the page at element %d", probe.Count, st.Index), 1280)
			}
			break
		}
		if st.Index != next {
			c.add(page, lang, "keyboard-order", st.Name, fmt.Sprintf("Tab %d reaches element %d, want element %d in document order (path so far: %s)", i+1, st.Index, next, strings.Join(seen, " → ")), 1280)
			break
		}
		seen = append(seen, st.Name)
		if !st.Visible {
			c.add(page, lang, "focus-visible", st.Name, "no visible focus indicator (outline or box-shadow) when reached with Tab", 1280)
		}
		if !st.InView {
			c.add(page, lang, "focus-in-view", st.Name, "the focused element is outside the screen", 1280)
		}
		next++
	}
	b.eval(`(() => { const s = document.getElementById("__a11y-start"); if (s) s.remove(); if (document.activeElement) document.activeElement.blur(); window.scrollTo(0, 0); return "" })()`)
}

// report fails the test with every finding and logs the count per page.
func (c *a11yChecker) report() {
	c.t.Helper()
	for _, key := range c.order {
		f := c.findings[key]
		c.t.Errorf("%s on %s [%s, %v px] at %s: %s", f.rule, f.page, f.lang, f.widths, f.target, f.detail)
	}
	var lines []string
	total := 0
	for _, p := range c.checked {
		lines = append(lines, fmt.Sprintf("  %-36s %d", p, c.pages[p]))
		total += c.pages[p]
	}
	sort.Strings(lines)
	c.t.Logf("accessibility findings per page (%d pages, WCAG 2.1 A/AA by %s, keyboard walk): %d (time: %v)\n%s", len(c.checked), axeVersion, total, c.spent, strings.Join(dedupe(lines), "\n"))
}

func dedupe(s []string) []string {
	var out []string
	for i, v := range s {
		if i == 0 || s[i-1] != v {
			out = append(out, v)
		}
	}
	return out
}

// setLang makes lang the browser's language choice for the portal (the
// cookie that ?lang= sets), so that a form's answer comes in it.
func (b *browser) setLang(lang string) {
	b.t.Helper()
	b.run("language cookie", chromedp.Func(func(ctx context.Context, tg *chromedp.Target) error {
		httpOnly := true
		_, err := cdproto.Call(ctx, tg, network.SetCookie, network.SetCookieParams{Name: "thiqa-lang", Value: lang, URL: b.base, HTTPOnly: &httpOnly})
		return err
	}))
}

// portalLangs are the portal's languages.
var portalLangs = []string{"ar", "en"}

// TestAccessibility holds every page to WCAG 2.1 level AA as far as a
// program can tell: axe-core's WCAG 2.1 A/AA rules in headless Chromium,
// in Arabic and English, at a phone's and a desktop's width, plus a Tab
// walk (every control reached in document order, a visible focus, no
// trap). Pages are checked empty, with content (a citizen's credentials,
// an officer's search results, a verification report) and in their
// error states (a wrong token, PIN or file; a refused form).
func TestAccessibility(t *testing.T) {
	c := newA11yChecker(t)
	f := newSignFixture(t)
	base := f.srv.base

	mob := issueOK(t, f.srv, f.officer, ca.IssueRequest{Profile: "citizen-auth", Subject: citizenSubject(), KeyInHSM: true})
	pinFile := f.path("login-pin")
	writeFile(t, pinFile, "135790\n")
	mustThiqa(t, nil, "oidc", "mobile", "enrol", "--data", f.dir, "--credential", mob.CredentialID, "--pin-file", pinFile)
	phoneToken := f.token(t, "12345678", "citizen")
	other := citizenSubject()
	other["civilNumber"], other["givenName"], other["commonName"] = "87654321", "Salim", "Salim Al Harthy"

	bs := newBrowsers(t, base, 3)
	desk, phone, officer := bs[0], bs[1], bs[2]
	defer c.report()
	c.errors = map[string]string{"ra-login-error": "#token", "phone-login-error": "#token", "my-sign-wrong-pin": "#pin",
		"ra-issue-error": "", "ra-search-error": "", "error-bad-serial": "", "error-not-officer": "", "my-sign-not-pdf": "",
		"phone-approve-wrong-pin": "", "my-home-pin-mismatch": "", "id-login-error": "#civil_number", "id-error": "",
		"not-found": "", "my-not-found": "", "ra-not-found": "", "not-allowed": "", "my-activity-error": ""}

	// GET pages: each language by its ?lang=.
	get := func(b *browser, path, page string) {
		t.Helper()
		for _, l := range portalLangs {
			sep := "?"
			if strings.Contains(path, "?") {
				sep = "&"
			}
			b.open(path + sep + "lang=" + l)
			c.check(b, page, l)
		}
	}
	// A form's answer: the language chosen first, the form sent in it.
	post := func(b *browser, page string, send func(lang string)) {
		t.Helper()
		for _, l := range portalLangs {
			b.setLang(l)
			send(l)
			c.check(b, page, l)
		}
	}

	get(desk, "/", "front")
	// A stale link or a mistyped address: the 404 page, and a page's
	// address opened with a method it does not take (405).
	get(desk, "/no/such/page", "not-found")
	get(desk, "/my/logout", "not-allowed")

	// The officer console: the sign-in and its refusal, the home page.
	get(officer, "/ra/", "ra-login")
	post(officer, "ra-login-error", func(string) {
		officer.open("/ra/")
		officer.set("#token", "not a token")
		officer.submit(`#officer-login button[type=submit]`)
	})
	officer.open("/ra/")
	officer.set("#token", f.officer)
	officer.submit(`#officer-login button[type=submit]`)
	get(officer, "/ra/", "ra-home")
	get(officer, "/ra/issue", "ra-issue")
	get(officer, "/ra/no-such-page", "ra-not-found")
	post(officer, "ra-issue-error", func(string) {
		officer.open("/ra/issue")
		officer.set("#f-country", "")
		officer.submit("#issue-button")
	})
	var serial, credential string
	post(officer, "ra-issued", func(l string) {
		officer.open("/ra/issue")
		subject := citizenSubject()
		if l == "en" {
			subject = other
		}
		for k, v := range subject {
			officer.set("#f-"+k, v)
		}
		officer.submit("#issue-button")
		if l == "ar" {
			serial, credential = officer.text("#issued-serial"), officer.text("#issued-credential")
		}
	})
	if serial == "" || credential == "" {
		t.Fatalf("issuing in the console: %s", officer.text("main"))
	}
	get(officer, "/ra/search", "ra-search")
	get(officer, "/ra/search?civilNumber=12345678", "ra-search-results")
	get(officer, "/ra/search?name=nobody-by-this-name", "ra-search-none")
	get(officer, "/ra/search?name=x&status=bogus", "ra-search-error")
	get(officer, "/ra/certificate?serial="+serial, "ra-certificate")
	get(officer, "/ra/certificate?serial=zz", "error-bad-serial")

	// The citizen's sign-in with mobile ID; the phone approves.
	get(desk, "/my/", "my-login")
	get(phone, "/my/approve", "phone-login")
	post(phone, "phone-login-error", func(string) {
		phone.open("/my/approve")
		phone.set("#token", "not a token")
		phone.submit(`#phone-login button[type=submit]`)
	})
	phone.open("/my/approve")
	phone.set("#token", phoneToken)
	phone.submit(`#phone-login button[type=submit]`)
	get(phone, "/my/approve", "phone-home-none")
	// Each wrong PIN ends that sign-in: a new one for each language.
	startLogin := func(check bool) {
		t.Helper()
		desk.open("/my/")
		desk.submit("#login")
		if check {
			c.check(desk, "id-login", "ar+en")
			desk.set("#civil_number", "12")
			desk.submit(`button[type=submit]`)
			c.check(desk, "id-login-error", "ar+en")
		}
		desk.set("#civil_number", "12345678")
		desk.submit(`button[type=submit]`)
		if check {
			c.check(desk, "id-wait", "ar+en")
		}
	}
	startLogin(true)
	get(phone, "/my/approve", "phone-home-pending")
	post(phone, "phone-approve-wrong-pin", func(l string) {
		if l != portalLangs[0] {
			startLogin(false)
		}
		phone.open("/my/approve")
		phone.set(`form.approve input[name=pin]`, "000000")
		phone.submit(`form.approve button[type=submit]`)
	})
	// Sign-ins she did not start (or gave up on): she denies them all.
	startLogin(false)
	phone.open("/my/approve")
	phone.submit(`#deny-all button[type=submit]`)
	c.check(phone, "phone-denied-all", "")
	startLogin(false)
	phone.open("/my/approve")
	phone.set(`form.approve input[name=pin]`, "135790")
	phone.submit(`form.approve button[type=submit]`)
	c.check(phone, "phone-approved", "")
	desk.submit(`button[type=submit]`)
	if p := desk.path(); p != "/my/" {
		t.Fatalf("after the sign-in: %s: %s", p, desk.text("main"))
	}

	// Her home page with credentials; the PIN form's refusal and success.
	get(desk, "/my/", "my-home")
	get(desk, "/my/no-such-page", "my-not-found")
	post(desk, "my-home-pin-mismatch", func(string) {
		desk.open("/my/")
		desk.set(`[data-kind=signing] input[name=pin]`, "246810")
		desk.set(`[data-kind=signing] input[name=pin2]`, "246811")
		desk.submit(`[data-kind=signing] .pin-form button[type=submit]`)
	})
	desk.setLang("en")
	desk.open("/my/")
	desk.set(`[data-kind=signing] input[name=pin]`, "246810")
	desk.set(`[data-kind=signing] input[name=pin2]`, "246810")
	desk.submit(`[data-kind=signing] .pin-form button[type=submit]`)
	c.check(desk, "my-home-pin-set", "en")
	get(desk, "/my/", "my-home-pin-change")

	// Signing: the form, a refused file, the approval, a wrong PIN, the result.
	get(desk, "/my/sign", "my-sign")
	notPDF := f.path("letter.pdf")
	writeFile(t, notPDF, "Dear officer, this is not a PDF.\n")
	doc := f.path("contract.pdf")
	if err := os.WriteFile(doc, samplePDF(t, 20<<10), 0o600); err != nil {
		t.Fatal(err)
	}
	upload := func(path string) {
		desk.open("/my/sign")
		desk.run("upload", chromedp.SetUploadFiles(chromedp.CSS("#document"), []string{path}))
		desk.submit("#upload")
	}
	post(desk, "my-sign-not-pdf", func(string) { upload(notPDF) })
	post(desk, "my-sign-approve", func(string) { upload(doc) })
	post(desk, "my-sign-wrong-pin", func(string) {
		upload(doc)
		desk.set("#pin", "000000")
		desk.submit("#approve")
	})
	post(desk, "my-signed", func(string) {
		upload(doc)
		desk.set("#pin", "246810")
		desk.submit("#approve")
		if desk.eval(`document.querySelector("#verdict") ? "y" : ""`) == "" {
			t.Fatalf("no verdict after signing: %s", desk.text("main"))
		}
	})
	signed := f.path("signed.pdf")
	req, _ := http.NewRequest(http.MethodGet, base+"/my/signed", nil)
	req.Header.Set("Cookie", desk.cookieHeader())
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("downloading the signed PDF: %d", resp.StatusCode)
	}
	if err := os.WriteFile(signed, body, 0o600); err != nil {
		t.Fatal(err)
	}
	post(desk, "my-revoke", func(string) {
		desk.open("/my/")
		desk.submit(`[data-kind=signing] .revoke-form button[type=submit]`)
	})
	// Her activity: the newest page (the sign-in, the signatures, the
	// revocation), an older page past the start (empty), a bad cursor.
	get(desk, "/my/activity", "my-activity")
	get(desk, "/my/activity?before=2", "my-activity-older")
	get(desk, "/my/activity?before=x", "my-activity-error")
	get(desk, "/ra/", "error-not-officer")
	desk.open("/oidc/authorize")
	c.check(desk, "id-error", "ar+en")

	// The officer's PIN reset (confirmation, the code), the citizen's
	// activation form, the revocation's confirmation and result.
	post(officer, "ra-pin-reset", func(string) {
		officer.open("/ra/certificate?serial=" + serial)
		officer.submit(`#pin-reset button[type=submit]`)
	})
	post(officer, "ra-pin-code", func(string) {
		officer.open("/ra/certificate?serial=" + serial)
		officer.submit(`#pin-reset button[type=submit]`)
		officer.submit("#confirm")
	})
	get(desk, "/my/", "my-home-activation")
	post(officer, "ra-revoke", func(string) {
		officer.open("/ra/certificate?serial=" + serial)
		officer.submit(`#revoke button[type=submit]`)
	})
	officer.submit("#confirm")
	get(officer, "/ra/certificate?serial="+serial, "ra-certificate-revoked")

	// The public verification page: each language choice, empty, with a
	// report, and with a refused file.
	vlangs := func(page string) {
		for _, l := range []string{"both", "ar", "en"} {
			desk.eval(fmt.Sprintf(`document.querySelector('.langs button[data-lang=%q]').click(); ""`, l))
			c.check(desk, page, l)
		}
	}
	desk.open("/verify")
	vlangs("verify")
	for name, file := range map[string]string{"verify-report": signed, "verify-not-pdf": notPDF} {
		desk.open("/verify")
		desk.run("upload", chromedp.SetUploadFiles(chromedp.CSS("#file"), []string{file}))
		desk.eval(`document.getElementById("go").click(); ""`)
		for deadline := time.Now().Add(60 * time.Second); ; time.Sleep(20 * time.Millisecond) {
			if desk.eval(`!document.getElementById("result").hidden || document.getElementById("status").className === "error" ? "y" : ""`) != "" {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("%s: no result", name)
			}
		}
		vlangs(name)
	}
}

// TestAccessibilityNumberMatching holds the phone page's states under
// number matching (identity.mobile.numberMatching) to the same checks:
// the pending sign-in with its code field, a code that is not digits
// (the error tied to the field), a wrong code (the sign-in cancelled),
// and the approval with the code the browser shows.
func TestAccessibilityNumberMatching(t *testing.T) {
	c := newA11yChecker(t)
	f := &signFixture{dir: filepath.Join(t.TempDir(), "data"), tmp: t.TempDir(), port: freePort(t)}
	conf := editedConfig(t, f.dir, func(y string) string {
		y = strings.ReplaceAll(y, "127.0.0.1:8080", "127.0.0.1:"+f.port)
		return strings.Replace(y, "  mobile:\n    numberMatching: false\n", "  mobile:\n    numberMatching: true\n", 1)
	})
	if !strings.Contains(mustRead(t, conf), "numberMatching: true") {
		t.Fatal("the configuration does not turn number matching on")
	}
	mustThiqa(t, nil, "init", "--data", f.dir, "--config", conf)
	f.start(t)
	f.officer = f.token(t, "officer-7", "registration-officer")
	mob := issueOK(t, f.srv, f.officer, ca.IssueRequest{Profile: "citizen-auth", Subject: citizenSubject(), KeyInHSM: true})
	pinFile := f.path("login-pin")
	writeFile(t, pinFile, "135790\n")
	mustThiqa(t, nil, "oidc", "mobile", "enrol", "--data", f.dir, "--credential", mob.CredentialID, "--pin-file", pinFile)
	phoneToken := f.token(t, "12345678", "citizen")

	bs := newBrowsers(t, f.srv.base, 2)
	desk, phone := bs[0], bs[1]
	defer c.report()
	c.errors = map[string]string{"phone-approve-bad-code": "form.match input[name=code]", "phone-approve-wrong-code": ""}
	startLogin := func() string {
		t.Helper()
		desk.open("/my/")
		desk.submit("#login")
		desk.set("#civil_number", "12345678")
		desk.submit(`button[type=submit]`)
		return desk.text("#verification_code")
	}
	phone.open("/my/approve")
	phone.set("#token", phoneToken)
	phone.submit(`#phone-login button[type=submit]`)

	code := startLogin()
	for _, l := range portalLangs {
		phone.open("/my/approve?lang=" + l)
		c.check(phone, "phone-home-pending-match", l)
	}
	for _, l := range portalLangs {
		phone.setLang(l)
		phone.open("/my/approve")
		phone.set(`form.match input[name=code]`, "12a4")
		phone.set(`form.match input[name=pin]`, "135790")
		phone.submit(`form.match button[type=submit]`)
		c.check(phone, "phone-approve-bad-code", l)
	}
	for i, l := range portalLangs {
		if i > 0 {
			code = startLogin()
		}
		wrong := "0000"
		if code == wrong {
			wrong = "1111"
		}
		phone.setLang(l)
		phone.open("/my/approve")
		phone.set(`form.match input[name=code]`, wrong)
		phone.set(`form.match input[name=pin]`, "135790")
		phone.submit(`form.match button[type=submit]`)
		c.check(phone, "phone-approve-wrong-code", l)
	}
	code = startLogin()
	phone.open("/my/approve")
	phone.set(`form.match input[name=code]`, code)
	phone.set(`form.match input[name=pin]`, "135790")
	phone.submit(`form.match button[type=submit]`)
	c.check(phone, "phone-approved-match", "")
	desk.submit(`button[type=submit]`)
	if p := desk.path(); p != "/my/" {
		t.Fatalf("after the sign-in with the typed code: %s: %s", p, desk.text("main"))
	}
}
