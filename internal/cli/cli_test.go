package cli

import (
	"bytes"
	"errors"
	"fmt"
	"strings"
	"testing"
)

// TestMainRunsCommands: the named command runs with the rest of the line; its error
// becomes the exit code and one line on stderr (none for ErrSilent); no
// command, help and an unknown command print the usage.
func TestMainRunsCommands(t *testing.T) {
	var got []string
	cmds := []Command{
		{"ok", "succeeds", func(args []string) error { got = args; return nil }},
		{"fail", "fails", func([]string) error { return errors.New("it\n  broke") }},
		{"exit", "exits 3", func([]string) error { return WithExit(3, fmt.Errorf("wrapped: %w", errors.New("bad"))) }},
		{"quiet", "exits 4 silently", func([]string) error { return WithExit(4, ErrSilent) }},
	}
	for _, tc := range []struct {
		args   []string
		code   int
		stderr string
	}{
		{[]string{"ok", "a", "b"}, 0, ""},
		{[]string{"fail"}, 1, "prog fail: it broke\n"},
		{[]string{"exit"}, 3, "prog exit: wrapped: bad\n"},
		{[]string{"quiet"}, 4, ""},
		{nil, 2, "usage: prog <command> [flags]"},
		{[]string{"-h"}, 0, "  quiet      exits 4 silently\n"},
		{[]string{"nope"}, 2, "prog: unknown command \"nope\"\nusage: prog"},
	} {
		var stderr bytes.Buffer
		code := Main("prog", cmds, tc.args, &stderr)
		if code != tc.code || (tc.stderr == "") != (stderr.Len() == 0) || !strings.Contains(stderr.String(), tc.stderr) {
			t.Errorf("%v: exit %d, stderr %q; want %d, %q", tc.args, code, stderr.String(), tc.code, tc.stderr)
		}
	}
	if strings.Join(got, " ") != "a b" {
		t.Errorf("ok ran with %q", got)
	}
}
