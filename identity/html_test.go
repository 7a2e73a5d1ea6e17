package identity

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

// A digital-ID page that reports an error names it first in its title, as
// the portal's pages do (the first thing a screen reader reads); the
// others keep their plain title.
func TestPageTitleNamesTheError(t *testing.T) {
	for _, tc := range []struct {
		name  string
		data  any
		error bool
	}{
		{"login", loginPage{ClientName: "Portal", Error: "Unknown civil number"}, true},
		{"login", loginPage{ClientName: "Portal"}, false},
		{"signing-pin", signingPINPage{ClientName: "Portal", Error: "Wrong PIN"}, true},
		{"signing-pin", signingPINPage{ClientName: "Portal"}, false},
		{"error", errorPage{Error: "The request expired"}, true},
		{"wait", waitPage{Code: "1234"}, false},
	} {
		w := httptest.NewRecorder()
		renderPage(w, 200, tc.name, tc.data)
		body := w.Body.String()
		if !strings.Contains(body, "</html>") {
			t.Fatalf("%s: not rendered whole:\n%s", tc.name, body)
		}
		if got := strings.Contains(body, "<title>Error · خطأ: Thiqa digital ID"); got != tc.error {
			t.Errorf("%s (error %v): the title names an error: %v\n%s", tc.name, tc.error, got, body)
		}
	}
}

// An error page answering 503 (the login cannot be recorded: the database
// down, the disk full) says when to come back, as every other "try again
// later" of the services does.
func TestUnavailablePageRetryAfter(t *testing.T) {
	rec := httptest.NewRecorder()
	renderPage(rec, http.StatusServiceUnavailable, "error", errorPage{Error: "temporarily unable to start the login"})
	if rec.Code != http.StatusServiceUnavailable || rec.Header().Get("Retry-After") == "" {
		t.Errorf("503 page: %d, Retry-After %q", rec.Code, rec.Header().Get("Retry-After"))
	}
	rec = httptest.NewRecorder()
	renderPage(rec, http.StatusBadRequest, "error", errorPage{Error: "bad request"})
	if rec.Header().Get("Retry-After") != "" {
		t.Error("a 400 page says to retry")
	}
}
