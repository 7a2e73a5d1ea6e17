package main

import (
	"bytes"
	"context"
	"strings"
	"testing"
)

// Every load generator's help says how long it runs and what it leaves on
// the token and in the store, before its flags.
func TestBenchHelpSaysDurationAndLeftovers(t *testing.T) {
	for _, b := range benchmarks() {
		var out, errb bytes.Buffer
		if code := run(context.Background(), &cliEnv{stdout: &out, stderr: &errb}, []string{"bench", b.name, "-h"}); code != 0 {
			t.Errorf("thiqa bench %s -h: exit %d\n%s", b.name, code, errb.String())
			continue
		}
		help := errb.String()
		runs, leaves, flags := strings.Index(help, "\nRuns "), strings.Index(help, "\nLeaves "), strings.Index(help, "Usage of thiqa bench "+b.name)
		if runs < 0 || leaves < 0 || flags < 0 || !(runs < leaves && leaves < flags) {
			t.Errorf("thiqa bench %s -h does not say how long it runs and what it leaves before its flags:\n%s", b.name, help)
		}
	}
}
