package identity

import (
	"html/template"
	"net/http"
	"strings"

	"github.com/thiqa/thiqa/internal/problem"
)

// The login pages are deliberately plain forms (Arabic and English labels)
// so that any browser, and tests driving plain HTTP, can use them.
var pages = template.Must(template.New("pages").Parse(`
{{/* head: its argument is the error the page reports ("" for none): the title names it first. */}}{{define "head"}}<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width">
<title>{{if .}}Error · خطأ: {{end}}Thiqa digital ID · الهوية الرقمية</title>
<style>body{font-family:sans-serif;max-width:36em;margin:2em auto;padding:0 1em}[lang=ar]{direction:rtl;display:block}.code{font-size:2.5em;letter-spacing:.2em;font-weight:bold}.err{color:#a00}input{font:inherit;padding:.4em;border:1px solid #6b7280}</style>
</head><body><main>
<h1>Thiqa digital ID <span lang="ar">الهوية الرقمية - ثقة</span></h1>{{end}}

{{define "login"}}{{template "head" .Error}}
<p>{{.ClientName}} asks you to log in. <span lang="ar">يطلب {{.ClientName}} تسجيل دخولك.</span></p>
{{if .Purpose}}<p id="purpose">{{.Purpose}}</p>{{end}}
{{if .Shares}}<p id="shares-heading">When you log in, {{.ClientName}} receives: <span lang="ar">عند تسجيل دخولك يحصل {{.ClientName}} على:</span></p>
<ul id="shares" aria-labelledby="shares-heading">{{range .Shares}}<li>{{.EN}} <span lang="ar">{{.AR}}</span></li>{{end}}</ul>{{end}}
{{if .Error}}<p class="err" id="error" role="alert">{{.Error}}</p>{{end}}
<form method="post" action="{{.Action}}">
{{range $k, $v := .Hidden}}<input type="hidden" name="{{$k}}" value="{{$v}}">
{{end}}<label for="civil_number">Civil number <span lang="ar">الرقم المدني</span></label>
<input id="civil_number" name="civil_number" inputmode="numeric" autocomplete="username" required{{if .Error}} aria-invalid="true" aria-describedby="error"{{end}}>
<button type="submit">Continue with mobile ID <span lang="ar">المتابعة بالهوية الرقمية على الهاتف</span></button>
</form>
<p>Or log in with your ID card: choose its certificate when your browser asks.
<span lang="ar">أو سجّل الدخول ببطاقتك الشخصية: اختر شهادتها عندما يطلب المتصفح ذلك.</span></p>
</main></body></html>{{end}}

{{define "wait"}}{{template "head" ""}}
{{if .Match}}<p id="type-code">Open the Thiqa app on your phone, type this code there, and approve with your PIN.
<span lang="ar">افتح تطبيق ثقة على هاتفك، واكتب فيه هذا الرمز، ثم وافق بإدخال رمزك السري.</span></p>
{{else}}<p>Open the Thiqa app on your phone, check that it shows this code, and approve with your PIN.
<span lang="ar">افتح تطبيق ثقة على هاتفك، وتأكد من ظهور هذا الرمز، ثم وافق بإدخال رمزك السري.</span></p>{{end}}
{{/* Each language's label carries its own colon: the Arabic one is a block of its own, so a ": " after it began the code's line. */}}<p>Verification code: <span lang="ar">رمز التحقق:</span> <span class="code" id="verification_code">{{.Code}}</span></p>
<p>Session: <span lang="ar">الجلسة:</span> <code id="session">{{.Session}}</code></p>
<form method="post" action="{{.Action}}">
<input type="hidden" name="login" value="{{.Session}}">
<input type="hidden" name="key" value="{{.Key}}">
<button type="submit">I have approved on my phone <span lang="ar">وافقت على هاتفي</span></button>
</form>
</main></body></html>{{end}}

{{define "signing-pin"}}{{template "head" .Error}}
<h2>Authorise a signature <span lang="ar">الموافقة على التوقيع</span></h2>
<p>{{.ClientName}} asks to sign with your credential <code id="credential">{{.Credential}}</code>
{{.Count}} time(s), exactly these hashes:
<span lang="ar">يطلب {{.ClientName}} التوقيع بشهادتك {{.Count}} مرة (مرات)، على هذه القيم فقط:</span></p>
{{if .Description}}<p id="description">{{.Description}}</p>{{end}}
<ul id="hashes">{{range .Hashes}}<li><code>{{.}}</code></li>{{end}}</ul>
{{if .Error}}<p class="err" id="error" role="alert">{{.Error}}</p>{{end}}
<form method="post" action="{{.Action}}">
{{range $k, $v := .Hidden}}<input type="hidden" name="{{$k}}" value="{{$v}}">
{{end}}<label for="signing_pin">Signing PIN <span lang="ar">رمز التوقيع</span></label>
<input id="signing_pin" name="signing_pin" type="password" inputmode="numeric" autocomplete="off" required{{if .Error}} aria-invalid="true" aria-describedby="error"{{end}}>
<button type="submit">Sign <span lang="ar">وقّع</span></button>
</form>
</main></body></html>{{end}}

{{define "error"}}{{template "head" .Error}}
<h2>The login cannot continue <span lang="ar">لا يمكن متابعة تسجيل الدخول</span></h2>
<p class="err" id="error" role="alert">{{.Error}}</p>
<p>You were not sent back to the portal. <span lang="ar">لم تتم إعادتك إلى البوابة.</span></p>
</main></body></html>{{end}}
`))

type loginPage struct {
	ClientName string
	Action     string
	Hidden     map[string]string
	Error      string
	// Purpose says what the login is for, when it is not a portal's.
	Purpose string
	// Shares lists what the login gives the portal or signing application
	// about the citizen (sharedClaims, cscShares), shown before they log
	// in.
	Shares []Shared
}

// Shared is one thing a login gives the portal or signing application
// about the citizen, in English and Arabic: the login page lists them, and
// so does the phone's list of pending logins (PendingSession.Shares).
type Shared struct {
	EN string `json:"en"`
	AR string `json:"ar"`
}

// sharedClaims lists what a login of client c with the scopes of scope
// gives it about the citizen, as the tokens and userinfo carry it
// (Provider.subject, mintTokens, userinfo): the civil number or the
// identifier of the portal's sector, which it names; the names with profile; and
// always how and when they logged in (acr, amr, auth_time). A citizen is
// told before they log in what the portal will learn (GDPR Art. 13).
func sharedClaims(c *Client, scope string) []Shared {
	// The identifier is one per sector (sectorOf): every portal of the
	// sector gets the same one, so the page names the sector rather than
	// promise one made for this portal alone.
	sector := sectorOf(c)
	out := []Shared{{"an identifier for the services of " + sector + ", not your civil number", "معرّف خاص بخدمات " + sector + "، وليس رقمك المدني"}}
	if c.AllowCivilNumber {
		out[0] = Shared{"your civil number", "رقمك المدني"}
	}
	if hasScope(strings.Fields(scope), ScopeProfile) {
		out = append(out, Shared{"your name (given name, family name and full name)", "اسمك (الاسم الأول واسم العائلة والاسم الكامل)"})
	}
	return append(out, sharedHow)
}

// sharedHow is what every login gives: how and when (acr, amr, auth_time).
var sharedHow = Shared{"how and when you logged in (mobile ID or ID card)", "طريقة تسجيل دخولك ووقته (الهوية الرقمية على الهاتف أو البطاقة الشخصية)"}

// cscShares lists what a signing application's login (CSC API) gives it
// about the citizen: its access token, which it can read, names them by
// civil number (sub) with acr and auth_time (cscToken), and the signing
// service answers it with their signing certificates, whose subject
// carries their name and civil number (credentials/list, credentials/info).
func cscShares() []Shared {
	return []Shared{
		{"your civil number", "رقمك المدني"},
		{"your signing certificates, which carry your name and civil number", "شهادات التوقيع الخاصة بك، وفيها اسمك ورقمك المدني"},
		sharedHow,
	}
}

// signingPINPage asks for the signing PIN of a credential authorization.
type signingPINPage struct {
	ClientName, Credential, Description string
	Count                               int
	Hashes                              []string // hex
	Action                              string
	Hidden                              map[string]string
	Error                               string
}

type waitPage struct {
	Code, Session, Key, Action string
	// Match: number matching (Config.NumberMatching), the citizen types
	// the code on the phone.
	Match bool
}

type errorPage struct{ Error string }

func renderPage(w http.ResponseWriter, status int, name string, data any) {
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("Content-Security-Policy", "default-src 'none'; style-src 'unsafe-inline'; frame-ancestors 'none'")
	w.Header().Set("X-Frame-Options", "DENY")
	problem.RetryLater(w.Header(), status) // a 503 page says when to come back
	w.WriteHeader(status)
	_ = pages.ExecuteTemplate(w, name, data)
}
