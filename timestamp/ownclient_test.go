package timestamp_test

import (
	"context"
	"crypto"
	"testing"

	"github.com/thiqa/thiqa/timestamp"
)

// TestOwnClient: the signature time-stamps go to the TSA in process only
// when the TSA URL is this server's own /tsa and the TSA service is wired;
// anything else keeps the HTTP client.
func TestOwnClient(t *testing.T) {
	ts := &timestamp.Service{}
	const base = "http://127.0.0.1:8093"
	own := timestamp.OwnClient(ts, base, base+"/tsa", "addr:in-process")
	if own == nil {
		t.Fatal("the server's own /tsa is not called in process")
	}
	for _, u := range []string{"http://127.0.0.1:9999/tsa", "https://127.0.0.1:8093/tsa", base + "/tsa?x=1", base + "/other", base + "/tsa/", "http://tsa.example/tsa", "::"} {
		if got := timestamp.OwnClient(ts, base, u, "r"); got != nil {
			t.Fatalf("%s is called in process", u)
		}
	}
	if got := timestamp.OwnClient(nil, base, base+"/tsa", "r"); got != nil {
		t.Fatal("in process without a TSA service")
	}
	if got := timestamp.OwnClient(ts, "::", base+"/tsa", "r"); got != nil {
		t.Fatal("in process with a bad publicBaseURL")
	}
	// A unit not installed yet: an error, never a panic.
	if _, err := own.Timestamp(context.Background(), make([]byte, 32), crypto.SHA256); err == nil {
		t.Fatal("a time-stamp without a unit")
	}
	if _, err := own.Timestamp(context.Background(), make([]byte, 20), crypto.SHA256); err == nil {
		t.Fatal("a digest of the wrong size")
	}
}
