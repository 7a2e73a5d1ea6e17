package config

import (
	"testing"
)

// FuzzParse feeds arbitrary bytes to the strict configuration decoder: it
// must return a configuration that validates, or an error, never panic.
func FuzzParse(f *testing.F) {
	good, err := Default("/data").Marshal()
	if err != nil {
		f.Fatal(err)
	}
	f.Add(good)
	f.Add([]byte("listen: [\n"))
	f.Add([]byte("hsm: {module: x, tokenLabel: t, pinEnv: P}\n"))
	f.Fuzz(func(t *testing.T, raw []byte) {
		c, err := Parse(raw, "/data")
		if err != nil {
			return
		}
		if err := c.Validate(); err != nil {
			t.Fatalf("Parse accepted a configuration that does not validate: %v", err)
		}
	})
}
