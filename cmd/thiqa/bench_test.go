package main

import (
	"bytes"
	"strings"
	"testing"
)

// TestBenchExitCodes: the load generators' refusals (package bench) keep
// the exit codes and messages of `thiqa bench`: -h is a clean exit, a bad
// flag exit 2 with the flag package's message alone, a refused command line
// exit 2 with one line, a refusal of the deployment (benchdeps.go) its own
// code, and a failure exit 1.
func TestBenchExitCodes(t *testing.T) {
	for _, tc := range []struct {
		args []string
		code int
		want string // in stderr
	}{
		{[]string{"hsm", "-h"}, 0, "Usage of thiqa bench hsm:"},
		{[]string{"seal", "-h"}, 0, "Usage of thiqa bench seal:"},
		{[]string{"hsm", "--nope"}, 2, "flag provided but not defined: -nope"},
		{[]string{"tsa", "http://127.0.0.1:1/tsa", "--nope"}, 2, "flag provided but not defined: -nope"},
		{[]string{"hsm", "--rounds", "0"}, 2, "thiqa bench: --rounds and --duration must be positive\n"},
		{[]string{"tsa", "http://127.0.0.1:1/tsa", "extra"}, 2, "thiqa bench: unexpected argument \"extra\"\n"},
		{[]string{"issue", "--url", "http://127.0.0.1:1"}, 2, "thiqa bench: --data DIR is required\n"},
		{[]string{"verify", "--in", "x", "--trust", "/nonexistent/root.pem"}, 1, "thiqa bench: reading trust anchors:"},
	} {
		var stdout, stderr bytes.Buffer
		code := run(t.Context(), &cliEnv{stdout: &stdout, stderr: &stderr}, append([]string{"bench"}, tc.args...))
		if code != tc.code || !strings.Contains(stderr.String(), tc.want) {
			t.Errorf("thiqa bench %s: exit %d, want %d with %q in stderr:\n%s", strings.Join(tc.args, " "), code, tc.code, tc.want, stderr.String())
		}
		// One line of ours, none where the flag package has spoken.
		lines := 1
		if !strings.HasPrefix(tc.want, "thiqa bench:") {
			lines = 0
		}
		if n := strings.Count(stderr.String(), "thiqa bench:"); n != lines {
			t.Errorf("thiqa bench %s: %d lines of ours, want %d:\n%s", strings.Join(tc.args, " "), n, lines, stderr.String())
		}
	}
}
