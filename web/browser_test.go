package web

import (
	"context"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/thiqa/thiqa/internal/testenv"
)

// verifyInBrowser verifies a document in the verify page, in headless
// Chromium, with the API answering report, and returns what script (a
// JavaScript expression giving a string) reads from the page then.
func verifyInBrowser(t *testing.T, report, script string) string {
	t.Helper()
	mux := http.NewServeMux()
	mux.Handle("/verify", Handler(Options{APIPath: "/api/v1/verify", MaxUploadBytes: 1 << 20}))
	mux.Handle("/verify/", Handler(Options{APIPath: "/api/v1/verify", MaxUploadBytes: 1 << 20}))
	mux.HandleFunc("POST /api/v1/verify", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write([]byte(report))
	})
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	doc := filepath.Join(t.TempDir(), "doc.pdf")
	if err := os.WriteFile(doc, []byte("%PDF-1.7\n"), 0o644); err != nil {
		t.Fatal(err)
	}

	opts := append(chromedp.DefaultExecAllocatorOptions[:], chromedp.ExecPath(testenv.Tool(t, "chromium")),
		chromedp.NoSandbox, chromedp.DisableGPU, chromedp.WindowSize(360, 800))
	alloc, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	t.Cleanup(cancelAlloc)
	ctx, cancel := chromedp.NewContext(alloc)
	t.Cleanup(cancel)
	if err := chromedp.Do(ctx); err != nil {
		t.Fatalf("starting Chromium: %v", err)
	}
	run, stop := context.WithTimeout(ctx, 60*time.Second)
	defer stop()
	if err := chromedp.Do(run, chromedp.Navigate(srv.URL+"/verify"), chromedp.WaitReady(chromedp.CSS("#file")),
		chromedp.SetUploadFiles(chromedp.CSS("#file"), []string{doc}), chromedp.Click(chromedp.CSS("#go")),
		chromedp.WaitVisible(chromedp.CSS("article.sig"))); err != nil {
		t.Fatalf("verifying in the page: %v", err)
	}
	got, err := chromedp.Run(run, chromedp.Evaluate[string](script))
	if err != nil {
		t.Fatal(err)
	}
	return got
}

// A report of one valid signature on a 9-byte document.
const oneSignatureReport = `{"indication":"TOTAL-PASSED","documentSize":9,"validationTime":"2026-12-05T17:00:00Z","signatures":[{"indication":"TOTAL-PASSED",` +
	`"signer":{"commonName":"Aisha Al Balushi","civilNumber":"12345678",` +
	`"issuer":"CN=Thiqa Citizen CA\\, Muscat,O=Thiqa Trust Services,C=OM,2.5.4.97=#130d4e54524f4d2d30303030303030"}}]}`

// TestVerifyPageNamesTheIssuer: in headless Chromium, the verify page shows
// a signature's issuer by its name ("Thiqa Citizen CA"), not as the
// report's distinguished name, which carried the organisation identifier
// as an OID and hex ("…,2.5.4.97=#130d4e54…") that no reader can use.
func TestVerifyPageNamesTheIssuer(t *testing.T) {
	got := verifyInBrowser(t, oneSignatureReport, `[...document.querySelectorAll("article.sig dd")].map(e => e.innerText).join(" | ")`)
	if !strings.Contains(got, "Thiqa Citizen CA, Muscat") || strings.Contains(got, "2.5.4.97") || strings.Contains(got, "CN=") {
		t.Fatalf("the signature's details: %q", got)
	}
}

// TestVerifyPageArabicSummaryDigits: the Arabic summary counts the
// signatures and bytes, and numbers each signature's heading, in
// Arabic-Indic digits, as the portal's Arabic pages write every number
// (formatNumber); it wrote "1 توقيع · 9 بايت" and "توقيع 1". The English
// keeps its digits.
func TestVerifyPageArabicSummaryDigits(t *testing.T) {
	report := strings.Replace(oneSignatureReport, `"documentSize":9`, `"documentSize":1024`, 1)
	got := verifyInBrowser(t, report, `[...document.querySelectorAll("#summary span, article.sig h2 span")].map(e => e.lang + "=" + e.textContent).join(" | ")`)
	if !strings.Contains(got, "ar=١ توقيع · ١٠٢٤ بايت") || !strings.Contains(got, "en=1 signature(s) · 1024 bytes") ||
		!strings.Contains(got, "ar=توقيع ١") || !strings.Contains(got, "en=Signature 1") {
		t.Fatalf("the summary: %q", got)
	}
}

// TestVerifyPageIssuerNameNotSpoofed: the issuer's name is its DN's own
// common name, never a ",CN=" escaped inside another attribute's value:
// anyone can make a CA whose organisation is "Evil\,CN=Thiqa Citizen CA",
// and the page named that CA "Thiqa Citizen CA".
func TestVerifyPageIssuerNameNotSpoofed(t *testing.T) {
	report := strings.Replace(oneSignatureReport, `CN=Thiqa Citizen CA\\, Muscat,O=Thiqa Trust Services,C=OM,2.5.4.97=#130d4e54524f4d2d30303030303030`,
		`O=Evil\\,CN=Thiqa Citizen CA,CN=Fake CA+O=Other,C=OM`, 1)
	got := verifyInBrowser(t, report, `[...document.querySelectorAll("article.sig dd")].map(e => e.innerText).join(" | ")`)
	if !strings.Contains(got, "Fake CA") || strings.Contains(got, "Thiqa Citizen CA") || strings.Contains(got, "Other") {
		t.Fatalf("the signature's details: %q", got)
	}
}
