package main

import "testing"

// TestOwnTSAFor: the in-process TSA (timestamp.OwnClient, tested there)
// needs the TSA service of this server to be wired.
func TestOwnTSAFor(t *testing.T) {
	const base = "http://127.0.0.1:8093"
	if got := ownTSAFor(&serving{tsa: &tsaService{}}, base, base+"/tsa"); got == nil {
		t.Fatal("the server's own /tsa is not called in process")
	}
	if got := ownTSAFor(&serving{}, base, base+"/tsa"); got != nil {
		t.Fatal("in process without a TSA service")
	}
	if got := ownTSAFor(nil, base, base+"/tsa"); got != nil {
		t.Fatal("in process without a server")
	}
}
