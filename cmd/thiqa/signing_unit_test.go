package main

import (
	"context"
	"crypto"
	"testing"
)

// TestOwnTSAFor: the signature time-stamps go to the TSA in process only
// when signing.tsaURL is this server's own /tsa and the TSA service is
// wired; anything else keeps the HTTP client.
func TestOwnTSAFor(t *testing.T) {
	ts := &tsaService{}
	sv := &serving{tsa: ts}
	const base = "http://127.0.0.1:8093"
	if got := ownTSAFor(sv, base, base+"/tsa"); got == nil || got.tsa != ts {
		t.Fatal("the server's own /tsa is not called in process")
	}
	for _, u := range []string{"http://127.0.0.1:9999/tsa", "https://127.0.0.1:8093/tsa", base + "/tsa?x=1", base + "/other", base + "/tsa/", "http://tsa.example/tsa", "::"} {
		if got := ownTSAFor(sv, base, u); got != nil {
			t.Fatalf("%s is called in process", u)
		}
	}
	if got := ownTSAFor(&serving{}, base, base+"/tsa"); got != nil {
		t.Fatal("in process without a TSA service")
	}
	if got := ownTSAFor(nil, base, base+"/tsa"); got != nil {
		t.Fatal("in process without a server")
	}
	if got := ownTSAFor(sv, "::", base+"/tsa"); got != nil {
		t.Fatal("in process with a bad publicBaseURL")
	}
	// A unit not installed yet: an error, never a panic.
	if _, err := (&ownTSA{tsa: ts}).Timestamp(context.Background(), make([]byte, 32), crypto.SHA256); err == nil {
		t.Fatal("a time-stamp without a unit")
	}
	if _, err := (&ownTSA{tsa: ts}).Timestamp(context.Background(), make([]byte, 20), crypto.SHA256); err == nil {
		t.Fatal("a digest of the wrong size")
	}
}
