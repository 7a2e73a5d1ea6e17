package main

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	cdproto "github.com/chromedp/cdproto/cdp"
	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/chromedp"

	"github.com/thiqa/thiqa/ca"
	"github.com/thiqa/thiqa/internal/testenv"
)

// browser is one headless Chromium browser context (its own cookies).
type browser struct {
	t    *testing.T
	ctx  context.Context
	base string
	shot string // folder for screenshots ("" when not kept)
}

// newBrowsers starts Debian's Chromium and returns n separate browser
// contexts (a computer and a phone do not share cookies).
func newBrowsers(t *testing.T, base string, n int) []*browser {
	t.Helper()
	opts := append(chromedp.DefaultExecAllocatorOptions[:], chromedp.ExecPath(testenv.Tool(t, "chromium")),
		chromedp.NoSandbox, chromedp.DisableGPU, chromedp.Flag("disable-quic", true), chromedp.WindowSize(1280, 900))
	alloc, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	t.Cleanup(cancelAlloc)
	first, cancel := chromedp.NewContext(alloc)
	t.Cleanup(cancel)
	if err := chromedp.Do(first); err != nil {
		t.Fatalf("starting Chromium: %v", err)
	}
	var shots string
	if os.Getenv("THIQA_SCREENSHOTS") != "" {
		shots = filepath.Join("..", "..", "docs", "screenshots")
		if err := os.MkdirAll(shots, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	out := []*browser{{t: t, ctx: first, base: base, shot: shots}}
	for i := 1; i < n; i++ {
		c, cancel := chromedp.NewContext(first, chromedp.WithNewBrowserContext())
		t.Cleanup(cancel)
		// The first run opens the tab, which lives as long as that run's
		// context: never one with a timeout.
		if err := chromedp.Do(c); err != nil {
			t.Fatalf("opening browser context %d: %v", i, err)
		}
		out = append(out, &browser{t: t, ctx: c, base: base, shot: shots})
	}
	return out
}

func (b *browser) run(what string, actions ...chromedp.Action[chromedp.Void]) {
	b.t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, 90*time.Second)
	defer cancel()
	if err := chromedp.Do(ctx, actions...); err != nil {
		b.t.Fatalf("%s: %v (page: %s)", what, err, b.text("main"))
	}
}

// open navigates to path and waits for the page.
func (b *browser) open(path string) {
	b.t.Helper()
	b.run("open "+path, chromedp.Navigate(b.base+path), chromedp.WaitReady(chromedp.CSS("body")))
}

// eval returns the value of a JavaScript expression as a string.
func (b *browser) eval(expr string) string {
	b.t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, 30*time.Second)
	defer cancel()
	out, err := chromedp.Run(ctx, chromedp.Evaluate[any](expr))
	if err != nil {
		b.t.Fatalf("evaluating %s: %v", expr, err)
	}
	if out == nil {
		return ""
	}
	return fmt.Sprint(out)
}

// text is the text of the first element matching sel ("" when none).
func (b *browser) text(sel string) string {
	return b.eval(fmt.Sprintf(`(document.querySelector(%q)||{}).innerText||""`, sel))
}

// set fills a form field.
func (b *browser) set(sel, value string) {
	b.t.Helper()
	b.eval(fmt.Sprintf(`(() => { const e = document.querySelector(%q); if (!e) throw new Error("no field %s"); e.value = %q; return "" })()`, sel, sel, value))
}

// submit clicks sel and waits for the next page to load.
func (b *browser) submit(sel string) {
	b.t.Helper()
	b.eval(`window.__before = 1`)
	b.run("click "+sel, chromedp.Click(chromedp.CSS(sel)))
	for deadline := time.Now().Add(90 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		ctx, cancel := context.WithTimeout(b.ctx, 5*time.Second)
		v, err := chromedp.Run(ctx, chromedp.Evaluate[string](`typeof window.__before === "undefined" && document.readyState === "complete" ? "yes" : ""`))
		cancel()
		if err == nil && v == "yes" {
			return
		}
	}
	b.t.Fatalf("no page after clicking %s", sel)
}

// path is the current page's path and query.
func (b *browser) path() string { return b.eval(`location.pathname + location.search`) }

// fits checks the page needs no horizontal scrolling at 360 px and at
// desktop width, and saves screenshots of both when asked to.
func (b *browser) fits(name string) {
	b.t.Helper()
	lang := b.eval(`document.documentElement.lang`)
	for _, w := range []int64{360, 1280} {
		b.run("viewport", chromedp.EmulateViewport(w, 800))
		if sw := b.eval(`String(document.documentElement.scrollWidth)`); sw != fmt.Sprint(w) {
			b.t.Errorf("%s (%s) is %s px wide at a %d px screen", name, lang, sw, w)
		}
		if b.shot != "" {
			ctx, cancel := context.WithTimeout(b.ctx, 60*time.Second)
			png, err := chromedp.Run(ctx, chromedp.FullScreenshot(100))
			cancel()
			if err != nil {
				b.t.Fatalf("screenshot: %v", err)
			}
			if err := os.WriteFile(filepath.Join(b.shot, fmt.Sprintf("%s-%s-%d.png", name, lang, w)), png, 0o644); err != nil {
				b.t.Fatal(err)
			}
		}
	}
	b.run("viewport", chromedp.EmulateViewport(1280, 900))
}

// both shows a GET page in Arabic and English: right to left and left to
// right, fitting a phone, screenshots of each.
func (b *browser) both(path, name string) {
	b.t.Helper()
	for _, l := range []string{"en", "ar"} {
		sep := "?"
		if strings.Contains(path, "?") {
			sep = "&"
		}
		b.open(path + sep + "lang=" + l)
		want := map[string]string{"ar": "ar rtl", "en": "en ltr"}[l]
		if got := b.eval(`document.documentElement.lang + " " + document.documentElement.dir`); got != want {
			b.t.Fatalf("%s: lang and dir %q, want %q", path, got, want)
		}
		b.fits(name)
	}
}

// cookieHeader is the browser's cookies for the server, for a download
// through the same session.
func (b *browser) cookieHeader() string {
	b.t.Helper()
	var cookies []*network.Cookie
	b.run("cookies", chromedp.Func(func(ctx context.Context, tg *chromedp.Target) error {
		res, err := cdproto.Call(ctx, tg, network.GetCookies, network.GetCookiesParams{URLs: []string{b.base}})
		cookies = res.Cookies
		return err
	}))
	var parts []string
	for _, c := range cookies {
		parts = append(parts, c.Name+"="+c.Value)
	}
	return strings.Join(parts, "; ")
}

// TestPortalInBrowser drives the people's pages in headless Chromium
// against `thiqa serve` on SoftHSM: an officer issues a citizen's signing
// credential in the console; the citizen signs in with mobile ID (the
// phone's approval on /my/approve in a second browser), sets the PIN,
// signs a PDF, downloads it (TOTAL-PASSED with thiqa verify, trusted by
// pdfsig); the officer revokes it. Bad input is refused in the page's
// language and changes nothing.
func TestPortalInBrowser(t *testing.T) {
	f := newSignFixture(t)
	base := f.srv.base
	db := filepath.Join(f.dir, "thiqa.db")
	root := filepath.Join(f.dir, "ca", "root.pem")

	// Aisha's mobile ID: a citizen-auth key on the token, enrolled with a
	// login PIN. Another citizen holds a signing credential too.
	mob := issueOK(t, f.srv, f.officer, ca.IssueRequest{Profile: "citizen-auth", Subject: citizenSubject(), KeyInHSM: true})
	pinFile := f.path("login-pin")
	writeFile(t, pinFile, "135790\n")
	mustThiqa(t, nil, "oidc", "mobile", "enrol", "--data", f.dir, "--credential", mob.CredentialID, "--pin-file", pinFile)
	other := citizenSubject()
	other["civilNumber"], other["givenName"], other["commonName"] = "87654321", "Salim", "Salim Al Harthy"
	otherCred := f.credential(t, "citizen-signing", other)
	phoneToken := f.token(t, "12345678", "citizen")

	bs := newBrowsers(t, base, 3)
	desk, phone, officer := bs[0], bs[1], bs[2]

	// The front page links every service.
	desk.both("/", "front")
	for _, want := range []string{`a[href="/verify"]`, `a[href="/my/"]`, `a[href="/ra/"]`, `a[href="/.well-known/openid-configuration"]`, `a[href="/openapi.json"]`, `a[href="/readyz"]`, `a[href="/certs/root.crt"]`} {
		if desk.eval(fmt.Sprintf(`document.querySelector(%q) ? "y" : ""`, want)) == "" {
			t.Errorf("the front page lacks %s", want)
		}
	}

	// The officer signs in with an officer token and issues Aisha's
	// signing credential, key on the token.
	officer.both("/ra/", "ra-login")
	officer.open("/ra/?lang=en")
	officer.set("#token", "not a token")
	officer.submit(`#officer-login button[type=submit]`)
	if got := officer.text("#error"); !strings.Contains(got, "not accepted") {
		t.Fatalf("a bad officer token: %q", got)
	}
	officer.set("#token", phoneToken)
	officer.submit(`#officer-login button[type=submit]`)
	if got := officer.text("#error"); !strings.Contains(got, "not a registration officer") {
		t.Fatalf("a citizen's token at the console: %q", got)
	}
	officer.set("#token", f.officer)
	officer.submit(`#officer-login button[type=submit]`)
	officer.both("/ra/", "ra-home")
	officer.both("/ra/issue", "ra-issue")
	officer.open("/ra/issue?lang=en")
	for k, v := range citizenSubject() {
		officer.set("#f-"+k, v)
	}
	officer.submit("#issue-button")
	serial, credential := officer.text("#issued-serial"), officer.text("#issued-credential")
	if serial == "" || credential == "" {
		t.Fatalf("issuing in the console: %s", officer.text("main"))
	}
	officer.fits("ra-issued")

	// Script in a name field is shown as text, never run.
	officer.open("/ra/issue?lang=en")
	evil := `<script>alert(1)</script><img src=x onerror=alert(2)>`
	for k, v := range other {
		officer.set("#f-"+k, v)
	}
	officer.set("#f-commonName", evil)
	officer.set("#f-givenName", evil)
	officer.submit("#issue-button")
	if n := officer.eval(`String(document.querySelectorAll("script, img").length)`); n != "0" {
		t.Fatalf("the name field's markup became elements: %s", n)
	}
	if !strings.Contains(officer.text("main"), "<script>alert(1)</script>") {
		t.Fatalf("the name field is not shown as text: %s", officer.text("main"))
	}

	// Aisha signs in on the computer with mobile ID; her phone approves.
	desk.both("/my/", "my-login")
	desk.open("/my/?lang=ar")
	desk.submit("#login")
	if p := desk.path(); !strings.HasPrefix(p, "/oidc/authorize") {
		t.Fatalf("sign-in went to %s", p)
	}
	desk.set("#civil_number", "12345678")
	desk.submit(`button[type=submit]`)
	code := desk.text("#verification_code")
	if code == "" {
		t.Fatalf("no verification code: %s", desk.text("body"))
	}
	phone.both("/my/approve", "phone-login")
	phone.open("/my/approve?lang=ar")
	phone.set("#token", phoneToken)
	phone.submit(`#phone-login button[type=submit]`)
	if got := phone.eval(`[...document.querySelectorAll("[data-code]")].map(e => e.dataset.code).join(",")`); got != code {
		t.Fatalf("the phone shows codes %q, the computer %q", got, code)
	}
	phone.fits("phone-pending")
	phone.set(`form.approve input[name=pin]`, "135790")
	phone.submit(`form.approve button[type=submit]`)
	if got := phone.text("#flash"); !strings.Contains(got, "تمت الموافقة") {
		t.Fatalf("approval: %q", got)
	}
	phone.fits("phone-approved")
	desk.submit(`button[type=submit]`)
	if p := desk.path(); p != "/my/" {
		t.Fatalf("after the sign-in: %s: %s", p, desk.text("main"))
	}
	// Her credential is listed, the other citizen's never.
	ids := desk.eval(`[...document.querySelectorAll("[data-credential]")].map(e => e.dataset.kind + ":" + e.dataset.credential).sort().join(",")`)
	if want := "mobile-id:" + mob.CredentialID + ",signing:" + credential; ids != want || strings.Contains(desk.eval(`document.body.innerHTML`), otherCred) || strings.Contains(desk.text("main"), "87654321") {
		t.Fatalf("credentials shown: %q (want only %q)", ids, want)
	}
	desk.both("/my/", "my-home")

	// She sets her signing PIN.
	desk.open("/my/?lang=en")
	desk.set(`[data-kind=signing] input[name=pin]`, "246810")
	desk.set(`[data-kind=signing] input[name=pin2]`, "246810")
	desk.submit(`[data-kind=signing] .pin-form button[type=submit]`)
	if got := desk.text("#flash"); !strings.Contains(got, "PIN is set") {
		t.Fatalf("setting the PIN: %q %s", got, desk.text("main"))
	}

	// Bad uploads: not a PDF, too large. Nothing is kept.
	notPDF := f.path("letter.pdf")
	writeFile(t, notPDF, "Dear officer, this is not a PDF.\n")
	desk.both("/my/sign", "my-sign")
	desk.open("/my/sign?lang=en")
	desk.run("upload", chromedp.SetUploadFiles(chromedp.CSS("#document"), []string{notPDF}))
	desk.submit("#upload")
	if got := desk.text("#error"); !strings.Contains(got, "not a PDF") {
		t.Fatalf("a text file as PDF: %q", got)
	}
	big := f.path("big.pdf")
	writeFile(t, big, "%PDF-1.7\n"+strings.Repeat("x", 11<<20))
	desk.open("/my/sign?lang=ar")
	desk.run("upload", chromedp.SetUploadFiles(chromedp.CSS("#document"), []string{big}))
	desk.submit("#upload")
	if got := desk.text("#error"); !strings.Contains(got, "كبير جدًا") {
		t.Fatalf("an 11 MiB upload: %q", got)
	}
	desk.fits("error-too-large")
	// Another citizen's credential, put into the form: refused, audited.
	desk.open("/my/sign?lang=en")
	doc := f.path("contract.pdf")
	if err := os.WriteFile(doc, samplePDF(t, 20<<10), 0o600); err != nil {
		t.Fatal(err)
	}
	refusedBefore := countAudit(t, db, "web.sign")
	desk.eval(fmt.Sprintf(`document.querySelector("#credential option").value = %q`, otherCred))
	desk.run("upload", chromedp.SetUploadFiles(chromedp.CSS("#document"), []string{doc}))
	desk.submit("#upload")
	if got := desk.text("#error"); !strings.Contains(got, "not yours") {
		t.Fatalf("another citizen's credential: %q", got)
	}
	if countAudit(t, db, "web.sign") != refusedBefore+1 {
		t.Fatal("the attempt on another citizen's credential was not audited")
	}

	// She signs a PDF: its fingerprint and level, her PIN, the verdict.
	desk.open("/my/sign?lang=ar")
	desk.run("upload", chromedp.SetUploadFiles(chromedp.CSS("#document"), []string{doc}))
	desk.submit("#upload")
	if h := desk.text("#doc-hash"); len(h) != 64 {
		t.Fatalf("no fingerprint shown: %s", desk.text("main"))
	}
	desk.fits("my-sign-approve")
	desk.set("#pin", "000000")
	desk.submit("#approve")
	if got := desk.text("#error"); !strings.Contains(got, "خاطئ") {
		t.Fatalf("a wrong PIN: %q", got)
	}
	desk.set("#pin", "246810")
	desk.submit("#approve")
	if got := desk.eval(`(document.querySelector("#verdict")||{dataset:{}}).dataset.indication||""`); got != "TOTAL-PASSED" {
		t.Fatalf("verdict on the signed PDF: %q\n%s", got, desk.text("main"))
	}
	desk.fits("my-signed")

	// The download, through the same session: the verifier and pdfsig agree.
	req, _ := http.NewRequest(http.MethodGet, base+"/my/signed", nil)
	req.Header.Set("Cookie", desk.cookieHeader())
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	signed, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || resp.Header.Get("Content-Type") != "application/pdf" || !strings.Contains(resp.Header.Get("Content-Disposition"), "contract-signed.pdf") {
		t.Fatalf("download: %d %s %s", resp.StatusCode, resp.Header.Get("Content-Type"), resp.Header.Get("Content-Disposition"))
	}
	f.checkPDF(t, "portal-signed.pdf", signed, "B-LT")
	nss := f.path("nss")
	_ = os.MkdirAll(nss, 0o700)
	for _, args := range [][]string{{"-N", "-d", "sql:" + nss, "--empty-password"}, {"-A", "-n", "thiqa-root", "-t", "CT,C,C", "-i", root, "-d", "sql:" + nss}} {
		if out, err := exec.Command(testenv.Tool(t, "certutil"), args...).CombinedOutput(); err != nil {
			t.Fatalf("certutil %v: %v\n%s", args, err, out)
		}
	}
	if out, _ := exec.Command(testenv.Tool(t, "pdfsig"), "-nssdir", "sql:"+nss, f.path("portal-signed.pdf")).CombinedOutput(); !strings.Contains(string(out), "Signature is Valid.") ||
		!strings.Contains(string(out), "Certificate is Trusted.") {
		t.Fatalf("pdfsig:\n%s", out)
	}

	// She changes her PIN; an officer resets it (the activation code shown
	// once); she chooses a new one with the code. Nobody but her knows it.
	desk.open("/my/?lang=en")
	desk.run("open the change form", chromedp.Click(chromedp.CSS(`[data-kind=signing] details.change-pin summary`)))
	desk.set(`[data-kind=signing] .change-form input[name=old]`, "246810")
	desk.set(`[data-kind=signing] .change-form input[name=new]`, "975310")
	desk.set(`[data-kind=signing] .change-form input[name=new2]`, "975310")
	desk.submit(`[data-kind=signing] .change-form button[type=submit]`)
	if got := desk.text("#flash"); !strings.Contains(got, "PIN is changed") {
		t.Fatalf("changing the PIN: %q", got)
	}
	officer.open("/ra/certificate?serial=" + serial + "&lang=en")
	if got := officer.text("#cert-credential"); got != credential {
		t.Fatalf("the certificate page names credential %q, want %q", got, credential)
	}
	officer.submit(`#pin-reset button[type=submit]`)
	officer.fits("ra-pin-reset-confirm")
	officer.submit("#confirm")
	activation := officer.text("#activation-code")
	if activation == "" {
		t.Fatalf("no activation code: %s", officer.text("main"))
	}
	officer.fits("ra-activation-code")
	desk.open("/my/?lang=ar")
	// The signing credential's listing says an activation is pending
	// after a reset: the form takes the code.
	if got := desk.text("[data-kind=signing] .pin-state"); got != "بانتظار رمز التفعيل" {
		t.Fatalf("PIN state after the reset: %q", got)
	}
	desk.fits("my-activate")
	desk.set(`[data-kind=signing] .pin-form input[name=code]`, "WRONG-CODE")
	desk.set(`[data-kind=signing] .pin-form input[name=pin]`, "864200")
	desk.set(`[data-kind=signing] .pin-form input[name=pin2]`, "864200")
	desk.submit(`[data-kind=signing] .pin-form button[type=submit]`)
	if got := desk.text("#flash"); got == "" || strings.Contains(got, "تم تعيين") {
		t.Fatalf("a wrong activation code: %q", got)
	}
	desk.set(`[data-kind=signing] .pin-form input[name=code]`, activation)
	desk.set(`[data-kind=signing] .pin-form input[name=pin]`, "864200")
	desk.set(`[data-kind=signing] .pin-form input[name=pin2]`, "864200")
	desk.submit(`[data-kind=signing] .pin-form button[type=submit]`)
	if got := desk.text("#flash"); !strings.Contains(got, "تم تعيين") {
		t.Fatalf("activating with the code: %q", got)
	}
	if got := desk.text("[data-kind=signing] .pin-state"); got != "معيّن" {
		t.Fatalf("PIN state after the activation: %q", got)
	}

	// A citizen at the officer console: refused in her language, audited.
	raBefore := countAudit(t, db, "web.ra")
	desk.open("/ra/?lang=ar")
	if got := desk.text("#error"); !strings.Contains(got, "لموظفي التسجيل فقط") {
		t.Fatalf("a citizen at /ra/: %q", got)
	}
	desk.fits("error-not-officer")
	desk.open("/ra/certificate?serial=" + serial)
	if got := desk.text("#error"); !strings.Contains(got, "لموظفي التسجيل فقط") || desk.text("#cert-status") != "" || strings.Contains(desk.text("main"), serial) {
		t.Fatalf("a citizen at /ra/certificate: %q", got)
	}
	if countAudit(t, db, "web.ra") != raBefore+2 {
		t.Fatal("the citizen's visits to the console were not audited")
	}

	// A forged CSRF token changes nothing and is audited.
	csrfBefore := countAudit(t, db, "web.csrf")
	desk.open("/my/?lang=en")
	desk.eval(`document.querySelector("[data-kind=signing] .revoke-form input[name=csrf]").value = "forged"`)
	desk.submit(`[data-kind=signing] .revoke-form button[type=submit]`)
	if got := desk.text("#error"); !strings.Contains(got, "no longer valid") {
		t.Fatalf("a forged CSRF token: %q", got)
	}
	if countAudit(t, db, "web.csrf") != csrfBefore+1 {
		t.Fatal("the forged CSRF token was not audited")
	}
	desk.open("/my/?lang=en")
	if got := desk.text("[data-kind=signing] .state"); got != "Valid" {
		t.Fatalf("after a forged revocation: %q", got)
	}

	// The officer finds the citizen by civil number and by name, opens
	// her signing certificate, revokes it with a reason and a confirmation.
	officer.both("/ra/search", "ra-search-form")
	officer.open("/ra/search?lang=ar")
	officer.set("#q-civil", "12345678")
	officer.submit("#search-button")
	found := officer.eval(`[...document.querySelectorAll("#results [data-serial]")].map(e => e.dataset.serial).join(",")`)
	if !strings.Contains(found, serial) || !strings.Contains(found, mob.Serial) || strings.Contains(officer.text("#results"), "Salim") {
		t.Fatalf("search by civil number found %q (want %s and %s, not the other citizen)", found, serial, mob.Serial)
	}
	officer.both("/ra/search?name=harthy&status=valid", "ra-search-results")
	officer.open("/ra/search?civilNumber=12345678&lang=en")
	officer.submit(fmt.Sprintf(`#results [data-serial=%q] a`, serial))
	if !strings.Contains(officer.text("main"), "12345678") {
		t.Fatalf("the certificate page: %s", officer.text("main"))
	}
	officer.both("/ra/certificate?serial="+serial, "ra-certificate")
	officer.open("/ra/certificate?serial=" + serial + "&lang=en")
	officer.eval(`document.querySelector("#reason").value = "keyCompromise"`)
	officer.submit(`#revoke button[type=submit]`)
	officer.fits("ra-revoke-confirm")
	officer.submit("#confirm")
	if got := officer.text("#cert-status"); got != "Revoked" {
		t.Fatalf("after revoking: %q %s", got, officer.text("main"))
	}
	// Its audit trail: issued by the officer, signed with by the citizen,
	// revoked by the officer, each under the person's own identity.
	trail := officer.text("#trail")
	for _, want := range []string{"certificate.issue", "document.sign", "certificate.revoke", "officer-7", "12345678"} {
		if !strings.Contains(trail, want) {
			t.Fatalf("the audit trail lacks %q:\n%s", want, trail)
		}
	}
	desk.open("/my/?lang=en")
	if got := desk.text("[data-kind=signing] .state"); got != "Revoked" {
		t.Fatalf("the citizen sees her revoked certificate as %q", got)
	}

	// She renews her mobile ID's certificate herself.
	desk.open("/my/?lang=en")
	desk.submit(`[data-kind=mobile-id] .renew-form button[type=submit]`)
	if got := desk.text("#flash"); !strings.Contains(got, "renewed") {
		t.Fatalf("renewing the mobile ID: %q", got)
	}

	// An expired session: the server no longer knows the cookie; a form
	// sent from it is refused, says so, and issues nothing.
	officer.open("/ra/issue?lang=en")
	for k, v := range other {
		officer.set("#f-"+k, v)
	}
	officer.run("the session expires", chromedp.Func(func(ctx context.Context, tg *chromedp.Target) error {
		httpOnly := true
		_, err := cdproto.Call(ctx, tg, network.SetCookie, network.SetCookieParams{Name: "thiqa-session", Value: strings.Repeat("A", 43), URL: base, HTTPOnly: &httpOnly})
		return err
	}))
	issued := countAudit(t, db, "certificate.issue")
	officer.submit("#issue-button")
	if got := officer.text("#error"); !strings.Contains(got, "session has expired") {
		t.Fatalf("a form of an expired session: %q", got)
	}
	if countAudit(t, db, "certificate.issue") != issued {
		t.Fatal("a form of an expired session issued a certificate")
	}
	officer.open("/ra/?lang=en")
	if officer.eval(`document.querySelector("#officer-login") ? "y" : ""`) == "" {
		t.Fatalf("the console with an unknown session: %s", officer.text("main"))
	}
	officer.fits("ra-login-again")
}
