// Package cmpfuzz fuzzes the CMP server's parsers (cmp.Inspect). It is a
// package of its own so that its test binary links the parsers and not the
// stores the server's tests run on: coverage-guided fuzzing slows to a
// crawl over the coverage counters of a SQLite driver.
package cmpfuzz

import (
	"testing"

	"github.com/thiqa/thiqa/enrol/cmp"
)

// FuzzInspect: no input makes the CMP parsers panic. Seeds are real
// requests of openssl cmp and answers of the server
// (testdata/fuzz/FuzzInspect).
func FuzzInspect(f *testing.F) {
	f.Add([]byte{0x30, 0x00})
	f.Fuzz(func(t *testing.T, der []byte) {
		name, err := cmp.Inspect(der)
		if err == nil && name == "" {
			t.Fatal("a message without a body type was accepted")
		}
	})
}
