package keyring

import (
	"bytes"
	"context"
	"crypto/sha256"
	"crypto/x509"
	"encoding/hex"
	"strings"
	"testing"

	"github.com/thiqa/thiqa/hsm"
)

// TestWriteTable lists the keys of a real token as `thiqa keys list`
// prints them: a header, then one line per key with its URI, type and the
// SHA-256 of its public key, which must be the key's own, and "ok" for
// the attributes of a key Thiqa generated.
func TestWriteTable(t *testing.T) {
	ctx := context.Background()
	tok := testToken(t)
	var empty bytes.Buffer
	if err := WriteTable(ctx, &empty, tok); err != nil {
		t.Fatalf("WriteTable on an empty token: %v", err)
	}
	if lines := strings.Split(strings.TrimSpace(empty.String()), "\n"); len(lines) != 1 || !strings.HasPrefix(lines[0], "URI") || !strings.HasSuffix(lines[0], "SPKI-SHA256  ATTRIBUTES") {
		t.Fatalf("empty token: want the header alone, got %q", empty.String())
	}
	ec, _, err := Ensure(ctx, tok, "table-ec", hsm.ECP256)
	if err != nil {
		t.Fatal(err)
	}
	rsa, _, err := Ensure(ctx, tok, "table-rsa", hsm.RSA2048)
	if err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	if err := WriteTable(ctx, &out, tok); err != nil {
		t.Fatalf("WriteTable: %v", err)
	}
	lines := strings.Split(strings.TrimSpace(out.String()), "\n")
	if len(lines) != 3 {
		t.Fatalf("want a header and 2 keys, got %q", out.String())
	}
	for _, k := range []*hsm.Signer{ec, rsa} {
		der, err := x509.MarshalPKIXPublicKey(k.Public())
		if err != nil {
			t.Fatal(err)
		}
		sum := sha256.Sum256(der)
		found := false
		for _, l := range lines[1:] {
			f := strings.Fields(l)
			if len(f) == 5 && f[0] == k.URI() {
				found = true
				if f[3] != hex.EncodeToString(sum[:]) {
					t.Errorf("%s: SPKI-SHA256 %s, want %x", k.Label(), f[3], sum)
				}
				if f[4] != "ok" {
					t.Errorf("%s: ATTRIBUTES %s, want ok", k.Label(), f[4])
				}
			}
		}
		if !found {
			t.Errorf("%s (%s) is not listed in %q", k.Label(), k.URI(), out.String())
		}
	}
}
