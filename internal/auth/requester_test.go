package auth

import (
	"net/http/httptest"
	"testing"
)

// TestRequesterWithoutCredentials: without credentials, or without an
// authenticator, a request is named by its remote address.
func TestRequesterWithoutCredentials(t *testing.T) {
	r := httptest.NewRequest("POST", "/tsa", nil)
	r.RemoteAddr = "192.0.2.7:5555"
	if got := Requester(nil)(r); got != "addr:192.0.2.7" {
		t.Fatalf("no authenticator: %q", got)
	}
	r.Header.Set("Authorization", "Bearer x")
	if got := Requester(nil)(r); got != "addr:192.0.2.7" {
		t.Fatalf("no authenticator, a token: %q", got)
	}
	r.RemoteAddr = "in-process" // inprocess.Transport's requests
	if got := Requester(nil)(r); got != "addr:in-process" {
		t.Fatalf("in process: %q", got)
	}
	if got := Requester(&Authenticator{})(httptest.NewRequest("POST", "/tsa", nil)); got != "addr:192.0.2.1" {
		t.Fatalf("no credentials: %q", got)
	}
}
