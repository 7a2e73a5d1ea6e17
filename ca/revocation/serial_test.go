package revocation

import (
	"encoding/hex"
	"math/big"
	"strings"
	"testing"
)

// FuzzNormalizeSerial: whatever a person types, a serial is refused or
// normalised to a canonical key that normalises to itself and parses back
// to the same positive number.
func FuzzNormalizeSerial(f *testing.F) {
	for _, s := range []string{"01", "0x7F", "ab:cd:ef", " 00ff ", "", "0", "zz", strings.Repeat("f", 65)} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		key, err := NormalizeSerial(s)
		if err != nil {
			return
		}
		n, ok := new(big.Int).SetString(key, 16)
		if !ok || n.Sign() <= 0 || hex.EncodeToString(n.Bytes()) != key || len(key)%2 != 0 {
			t.Fatalf("%q normalised to %q", s, key)
		}
		if again, err := NormalizeSerial(key); err != nil || again != key {
			t.Fatalf("%q is not a fixed point: %q %v", key, again, err)
		}
	})
}
