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

// Every verb answers -h with exit 0 and its usage, never an error; a verb
// with subcommands prints each form on a line of its own and answers a
// missing or unknown subcommand with exit 2 and the same usage.
func TestEveryVerbHasHelp(t *testing.T) {
	for _, c := range commands() {
		var out, errb bytes.Buffer
		if code := run(context.Background(), &cliEnv{stdout: &out, stderr: &errb}, []string{c.name, "-h"}); code != 0 {
			t.Errorf("thiqa %s -h: exit %d\n%s", c.name, code, errb.String())
		}
		if !strings.Contains(strings.ToLower(errb.String()), "usage") && c.name != "version" {
			t.Errorf("thiqa %s -h prints no usage:\n%s", c.name, errb.String())
		}
	}
	for _, tc := range []struct {
		args  []string
		forms int
	}{
		{[]string{"ca"}, 6}, {[]string{"ca", "bogus"}, 6}, {[]string{"oidc", "client"}, 3},
		{[]string{"tsl", "bogus"}, 2}, {[]string{"audit"}, 2}, {[]string{"config"}, 2},
		{[]string{"keys"}, 1}, {[]string{"enrol", "bogus"}, 1}, {[]string{"notify"}, 2}, {[]string{"notify", "bogus"}, 2},
	} {
		var out, errb bytes.Buffer
		code := run(context.Background(), &cliEnv{stdout: &out, stderr: &errb}, tc.args)
		forms := strings.Count(errb.String(), "thiqa "+tc.args[0]+" ")
		if code != 2 || forms < tc.forms || strings.Contains(errb.String(), "] thiqa ") {
			t.Errorf("thiqa %s: exit %d, %d usage forms (want 2, %d, one per line):\n%s", strings.Join(tc.args, " "), code, forms, tc.forms, errb.String())
		}
	}
}
