package main

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"runtime"
	"runtime/pprof"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/thiqa/thiqa/verify/report"
)

// benchVerify is `thiqa bench verify --in FILE --trust PEM [--concurrency N]
// [--duration D] [--at T]`: in-process validations per second of one
// document (read into memory once; no network: revocation data must be
// embedded, as in B-LT), with p50/p99 latencies. With --once it validates
// the file once, streaming it from disk, and prints the process's peak
// resident memory (VmHWM) — the figure for a large document.
func benchVerify(ctx context.Context, env *cliEnv, args []string) error {
	fs := newFlags("bench verify", env)
	in := fs.String("in", "", "signed PDF to validate (required)")
	var trust pemFileList
	fs.Var(&trust, "trust", "PEM file of trusted roots (repeatable, required)")
	conc := fs.Int("concurrency", runtime.GOMAXPROCS(0), "concurrent validations")
	d := fs.Duration("duration", 5*time.Second, "measuring time")
	at := fs.String("at", "", "validation time (RFC 3339; default now)")
	once := fs.Bool("once", false, "validate once from disk and report peak memory (VmHWM)")
	cpuProfile := fs.String("cpuprofile", "", "write a CPU profile of the measuring run to this file")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if *in == "" || len(trust) == 0 {
		return withExit(2, errors.New("--in and --trust are required"))
	}
	if *conc < 1 || *d <= 0 {
		return withExit(2, errors.New("--concurrency and --duration must be positive"))
	}
	var when time.Time
	if *at != "" {
		var err error
		if when, err = time.Parse(time.RFC3339, *at); err != nil {
			return withExit(2, fmt.Errorf("--at: %w", err))
		}
	}
	var s verifierSettings
	for _, p := range trust {
		certs, err := readAnchors(p)
		if err != nil {
			return err
		}
		s.anchors = append(s.anchors, certs...)
	}
	s.at, s.maxSize = when, 4<<30
	v := newVerifier(s) // offline: the benchmark never touches the network
	if *once {
		f, err := os.Open(*in)
		if err != nil {
			return err
		}
		defer f.Close()
		st, err := f.Stat()
		if err != nil {
			return err
		}
		start := time.Now()
		rep, err := v.VerifyPDF(ctx, f, st.Size())
		if err != nil {
			return err
		}
		hwm, err := peakRSS()
		if err != nil {
			return err
		}
		fmt.Fprintf(env.stdout, "document      %s, %.1f MiB, %d signature(s)\n", *in, float64(st.Size())/(1<<20), len(rep.Signatures))
		fmt.Fprintf(env.stdout, "verdict       %s %s in %s\n", rep.Indication, rep.SubIndication, time.Since(start).Round(time.Millisecond))
		fmt.Fprintf(env.stdout, "peak memory   %.1f MiB (VmHWM of the process)\n", float64(hwm)/1024)
		return nil
	}
	doc, err := os.ReadFile(*in)
	if err != nil {
		return err
	}
	first, err := v.VerifyPDF(ctx, bytes.NewReader(doc), int64(len(doc)))
	if err != nil {
		return err
	}
	if first.Indication != report.TotalPassed {
		fmt.Fprintf(env.stderr, "warning: the document verifies %s %s, not TOTAL-PASSED\n", first.Indication, first.SubIndication)
	}
	if *cpuProfile != "" {
		pf, err := os.Create(*cpuProfile)
		if err != nil {
			return err
		}
		defer pf.Close()
		if err := pprof.StartCPUProfile(pf); err != nil {
			return err
		}
		defer pprof.StopCPUProfile()
	}
	lat := &latencies{}
	var failures atomic.Int64
	cpu0 := cpuTime()
	deadline := time.Now().Add(*d)
	start := time.Now()
	var wg sync.WaitGroup
	for range *conc {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var mine []time.Duration
			for time.Now().Before(deadline) && ctx.Err() == nil {
				t0 := time.Now()
				rep, err := v.VerifyPDF(ctx, bytes.NewReader(doc), int64(len(doc)))
				mine = append(mine, time.Since(t0))
				if err != nil || rep.Indication != first.Indication {
					failures.Add(1)
				}
			}
			lat.add(mine)
		}()
	}
	wg.Wait()
	elapsed := time.Since(start)
	cpu := cpuTime() - cpu0
	n := len(lat.all)
	level := ""
	if len(first.Signatures) > 0 {
		level = first.Signatures[len(first.Signatures)-1].Level
	}
	fmt.Fprintf(env.stdout, "document      %s, %.1f KiB, %d signature(s), %s %s\n", *in, float64(len(doc))/1024, len(first.Signatures), first.Indication, level)
	fmt.Fprintf(env.stdout, "validations   %d in %s with %d goroutines (GOMAXPROCS %d): %.1f/s, %d differing\n",
		n, elapsed.Round(time.Millisecond), *conc, runtime.GOMAXPROCS(0), float64(n)/elapsed.Seconds(), failures.Load())
	fmt.Fprintf(env.stdout, "latency       p50 %s  p99 %s\n", lat.percentile(50).Round(10*time.Microsecond), lat.percentile(99).Round(10*time.Microsecond))
	if n > 0 && cpu > 0 {
		per := cpu / time.Duration(n)
		fmt.Fprintf(env.stdout, "cpu           %s per validation (process user+system time) -> %.0f/s per idle core\n",
			per.Round(10*time.Microsecond), float64(time.Second)/float64(per))
	}
	return nil
}

// cpuTime returns the process's user+system CPU time so far (0 when unknown).
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// peakRSS returns the process's peak resident set size in KiB (VmHWM).
func peakRSS() (int64, error) {
	f, err := os.Open("/proc/self/status")
	if err != nil {
		return 0, fmt.Errorf("reading peak memory: %w", err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if rest, ok := strings.CutPrefix(sc.Text(), "VmHWM:"); ok {
			var kib int64
			if _, err := fmt.Sscanf(strings.TrimSpace(rest), "%d kB", &kib); err != nil {
				return 0, fmt.Errorf("parsing VmHWM %q: %w", rest, err)
			}
			return kib, nil
		}
	}
	return 0, errors.New("no VmHWM in /proc/self/status")
}
