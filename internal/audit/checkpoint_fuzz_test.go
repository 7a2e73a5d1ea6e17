package audit_test

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"testing"

	"github.com/thiqa/thiqa/internal/audit"
)

// FuzzParseCheckpointLine: the line parser never panics, and what it
// accepts encodes back to a line that parses to the same checkpoint.
func FuzzParseCheckpointLine(f *testing.F) {
	f.Add([]byte(`{"v":1,"seq":41230,"hash":"abababababababababababababababababababababababababababababababab","time":"2026-11-22T13:00:00.000000001Z","sig":"MEUCIQ=="}` + "\n"))
	f.Add([]byte(`{"v":1,"seq":1,"hash":"00","time":"x","sig":""}`))
	f.Fuzz(func(t *testing.T, line []byte) {
		c, err := audit.ParseCheckpointLine(line)
		if err != nil {
			return
		}
		again, err := c.MarshalLine()
		if err != nil {
			t.Fatalf("accepted %q but cannot encode it: %v", line, err)
		}
		back, err := audit.ParseCheckpointLine(again)
		if err != nil {
			t.Fatalf("re-encoded %q does not parse: %v", again, err)
		}
		if back.Seq != c.Seq || !bytes.Equal(back.Hash, c.Hash) || !back.Time.Equal(c.Time) || !bytes.Equal(back.Signature, c.Signature) ||
			!bytes.Equal(back.SignedBytes(), c.SignedBytes()) {
			t.Fatalf("round trip changed %+v into %+v", c, back)
		}
	})
}

// FuzzVerifyCheckpoints: any checkpoint file content gives a report or an
// error, never a panic, and a file of valid lines never reports a problem
// it does not have.
func FuzzVerifyCheckpoints(f *testing.F) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		f.Fatal(err)
	}
	chain := &fakeChain{}
	chain.grow(8)
	f.Add([]byte(""))
	f.Add([]byte("{}\n{\"v\":1}"))
	f.Add([]byte(`{"v":1,"seq":3,"hash":"abababababababababababababababababababababababababababababababab","time":"2026-11-22T13:00:00Z","sig":"MEUCIQ=="}` + "\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		_, _ = audit.VerifyCheckpoints(context.Background(), chain, bytes.NewReader(data), &key.PublicKey)
	})
}
