package problem

import (
	"net/http"
	"net/http/httptest"
	"testing"
)

// TestWrite503RetryAfter: every 503 tells when to come back, keeping a
// Retry-After the caller chose; other statuses get none.
func TestWrite503RetryAfter(t *testing.T) {
	rec := httptest.NewRecorder()
	Write(rec, Details{Status: http.StatusServiceUnavailable, Detail: "down"})
	if got := rec.Header().Get("Retry-After"); got != RetryAfterSeconds {
		t.Fatalf("503: Retry-After %q, want %q", got, RetryAfterSeconds)
	}
	rec = httptest.NewRecorder()
	rec.Header().Set("Retry-After", "30")
	Error(rec, http.StatusServiceUnavailable, "down")
	if got := rec.Header().Get("Retry-After"); got != "30" {
		t.Fatalf("503 with the caller's Retry-After: %q, want 30", got)
	}
	rec = httptest.NewRecorder()
	Error(rec, http.StatusInternalServerError, "broken")
	if got := rec.Header().Get("Retry-After"); got != "" {
		t.Fatalf("500: Retry-After %q, want none", got)
	}
}
