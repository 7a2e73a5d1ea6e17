// Package bench holds Thiqa's load generators, the code behind
// `thiqa bench hsm|issue|ocsp|tsa|login|seal|sign|cluster|verify`. Each one
// loads a running server the way its clients would (hsm and verify can also
// measure in process), measures rates, latencies and CPU, and reports the
// rate of what the HSM signs next to the token's raw rate measured in the
// same run. cluster instead loads a cluster through its load balancer and
// then checks the failover (Cluster).
//
// The generators take what they need from the deployment they measure (its
// configuration, token and store, which only cmd/thiqa may open) through
// the interfaces of deps.go; cmd/thiqa fills them and only dispatches.
// Each generator parses its own flags and writes its report to stdout.
package bench

import (
	"bytes"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

// UsageError is a command line a load generator refuses: the command exits
// with status 2. Its message is the wrapped error's.
type UsageError struct{ Err error }

// Error returns the refusal's message.
func (e *UsageError) Error() string { return e.Err.Error() }

// Unwrap returns the refusal.
func (e *UsageError) Unwrap() error { return e.Err }

// usage marks err as a refused command line.
func usage(err error) error { return &UsageError{Err: err} }

// ErrReported is wrapped in a UsageError whose message the flag package has
// already written to stderr: print nothing more. A generator asked for -h
// returns flag.ErrHelp after printing its flags.
var ErrReported = errors.New("already reported")

// env is where a generator writes (its report to stdout, warnings and flag
// help to stderr) and what it measures.
type env struct {
	deps   Deps
	stdout io.Writer
	stderr io.Writer
}

// newFlags returns a flag set that reports errors instead of exiting.
func newFlags(name string, env *env) *flag.FlagSet {
	fs := flag.NewFlagSet("thiqa "+name, flag.ContinueOnError)
	fs.SetOutput(env.stderr)
	return fs
}

// parseFlags parses args with no positional argument; see parseError.
func parseFlags(fs *flag.FlagSet, args []string) error {
	if err := fs.Parse(args); err != nil {
		return parseError(err)
	}
	if fs.NArg() > 0 {
		return usage(fmt.Errorf("unexpected argument %q", fs.Arg(0)))
	}
	return nil
}

// parseError is what a generator returns when fs.Parse failed: -h is
// flag.ErrHelp, a bad flag (already reported by the flag package) a
// UsageError.
func parseError(err error) error {
	if errors.Is(err, flag.ErrHelp) {
		return flag.ErrHelp
	}
	return usage(ErrReported)
}

// fileList is a repeatable flag naming files.
type fileList []string

func (l *fileList) String() string     { return fmt.Sprint(*l) }
func (l *fileList) Set(v string) error { *l = append(*l, v); return nil }

// latencies collects per-operation durations from several goroutines.
type latencies struct {
	mu  sync.Mutex
	all []time.Duration
}

func (l *latencies) add(ds []time.Duration) {
	l.mu.Lock()
	l.all = append(l.all, ds...)
	l.mu.Unlock()
}

// percentile returns the p-th percentile (0 < p ≤ 100).
func (l *latencies) percentile(p float64) time.Duration {
	if len(l.all) == 0 {
		return 0
	}
	s := slices.Clone(l.all)
	slices.Sort(s)
	i := int(float64(len(s))*p/100+0.5) - 1
	return s[max(0, min(i, len(s)-1))]
}

// parseInts reads a comma-separated list of positive integers.
func parseInts(s string) ([]int, error) {
	var out []int
	for _, f := range strings.Split(s, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(f))
		if err != nil || n < 1 {
			return nil, fmt.Errorf("%q is not a positive integer", f)
		}
		out = append(out, n)
	}
	return out, nil
}

// median returns the median of xs (xs is reordered).
func median(xs []float64) float64 {
	slices.Sort(xs)
	n := len(xs)
	if n%2 == 1 {
		return xs[n/2]
	}
	return (xs[n/2-1] + xs[n/2]) / 2
}

// cpuTime returns the user+system CPU time this process used so far (0
// when unknown).
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// serverCPUTime returns a process's user+system CPU time (0 without a pid).
func serverCPUTime(pid int) time.Duration {
	if pid <= 0 {
		return 0
	}
	raw, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0
	}
	// Fields after the command name (which may hold spaces) in parentheses.
	i := bytes.LastIndexByte(raw, ')')
	if i < 0 {
		return 0
	}
	f := strings.Fields(string(raw[i+1:]))
	if len(f) < 13 {
		return 0
	}
	u, _ := strconv.ParseInt(f[11], 10, 64)
	st, _ := strconv.ParseInt(f[12], 10, 64)
	return time.Duration(u+st) * 10 * time.Millisecond // USER_HZ is 100 on Linux
}

// oneLine folds a message onto one line.
func oneLine(s string) string { return strings.Join(strings.Fields(s), " ") }
