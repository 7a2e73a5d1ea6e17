package ca

import (
	"crypto/sha256"
	"encoding/hex"
	"slices"
	"strings"

	"github.com/thiqa/thiqa/policies"
)

// Fingerprint is the SHA-256 of der as openssl prints it (AB:CD:…): what
// the operator compares by eye at a key ceremony and when installing its
// results.
func Fingerprint(der []byte) string {
	sum := sha256.Sum256(der)
	h := strings.ToUpper(hex.EncodeToString(sum[:]))
	var b strings.Builder
	for i := 0; i < len(h); i += 2 {
		if i > 0 {
			b.WriteByte(':')
		}
		b.WriteString(h[i : i+2])
	}
	return b.String()
}

// IssuingCANames lists the CAs the profiles name as issuers, sorted.
func IssuingCANames(profiles *policies.ProfileSet) []string {
	var out []string
	for _, n := range profiles.Names() {
		p, err := profiles.Get(n)
		if err != nil {
			continue
		}
		for _, is := range p.Issuers {
			if !slices.Contains(out, is) {
				out = append(out, is)
			}
		}
	}
	slices.Sort(out)
	return out
}
