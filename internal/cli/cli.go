// Package cli is the process plumbing of a command-line program made of
// subcommands: it runs the one a command line names and turns the error it
// returns into an exit code and one line on standard error.
package cli

import (
	"errors"
	"fmt"
	"io"
	"strings"
)

// ExitError carries a specific exit code out of a subcommand.
type ExitError struct {
	Code int
	Err  error
}

// Error is the message of the error carried.
func (e *ExitError) Error() string { return e.Err.Error() }

// Unwrap returns the error carried.
func (e *ExitError) Unwrap() error { return e.Err }

// WithExit attaches an exit code to err.
func WithExit(code int, err error) error { return &ExitError{Code: code, Err: err} }

// ErrSilent marks an error whose message was already printed: Main prints
// nothing more for it.
var ErrSilent = errors.New("reported")

// Command is one subcommand: its name, the one-line summary the usage
// shows, and what runs it with the arguments after its name.
type Command struct {
	Name, Summary string
	Run           func(args []string) error
}

// Main runs the subcommand args[0] names with the rest of args and returns
// the process exit code: 0 when it succeeds, an ExitError's code, else 1.
// An error other than ErrSilent is printed to stderr as "PROG NAME:
// message" on one line. Without arguments, with -h, --help or help, or
// with an unknown command it prints the usage; the exit code is 2, or 0
// when the usage was asked for.
func Main(prog string, cmds []Command, args []string, stderr io.Writer) int {
	if len(args) == 0 || args[0] == "-h" || args[0] == "--help" || args[0] == "help" {
		Usage(stderr, prog, cmds)
		if len(args) == 0 {
			return 2
		}
		return 0
	}
	for _, c := range cmds {
		if c.Name != args[0] {
			continue
		}
		err := c.Run(args[1:])
		if err == nil {
			return 0
		}
		var ee *ExitError
		code := 1
		if errors.As(err, &ee) {
			code = ee.Code
		}
		if !errors.Is(err, ErrSilent) {
			fmt.Fprintf(stderr, "%s %s: %s\n", prog, c.Name, strings.Join(strings.Fields(err.Error()), " "))
		}
		return code
	}
	fmt.Fprintf(stderr, "%s: unknown command %q\n", prog, args[0])
	Usage(stderr, prog, cmds)
	return 2
}

// Usage prints the program's commands and their summaries.
func Usage(w io.Writer, prog string, cmds []Command) {
	fmt.Fprintf(w, "usage: %s <command> [flags]\n\ncommands:\n", prog)
	for _, c := range cmds {
		fmt.Fprintf(w, "  %-10s %s\n", c.Name, c.Summary)
	}
	fmt.Fprintf(w, "\nRun '%s <command> -h' for a command's flags.\n", prog)
}
