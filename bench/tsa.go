package bench

import (
	"bufio"
	"bytes"
	"context"
	"crypto"
	"crypto/rand"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"math"
	"math/big"
	"net"
	"net/http"
	neturl "net/url"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/thiqa/thiqa/timestamp"
	"github.com/thiqa/thiqa/timestamp/tsp"
)

// TSA is a load generator for POST /tsa (`thiqa bench tsa`): requests with nonces are
// prepared in advance, then sent from concurrent keep-alive connections
// (full load), then paced at half the measured full rate. Every reply's
// PKIStatus is checked. With --data it also measures the raw PKCS#11 sign
// rate of the TSA unit key's type on the same token, before and after.
func TSA(ctx context.Context, deps Deps, args []string, stdout, stderr io.Writer) error {
	env := &env{deps: deps, stdout: stdout, stderr: stderr}
	fs := newFlags("bench tsa", env)
	dir := fs.String("data", "", "data folder of the server: the raw HSM rate of the TSA unit key is measured on its token")
	// 64 in flight: every token's record is group-committed before its
	// reply, so with fewer the commits carry few tokens each and the two
	// cores idle between them (16 connections give about 20 % less).
	conc := fs.Int("concurrency", 64, "concurrent requests at full load")
	d := fs.Duration("duration", 5*time.Second, "measuring time of each phase")
	prepared := fs.Int("prepared", 4096, "distinct prepared requests (random data, nonce each), sent round robin")
	rawFor := fs.Duration("raw-duration", 2*time.Second, "measuring time of each raw HSM rate measurement")
	// The URL may come before or after the flags.
	var url string
	if len(args) > 0 && !strings.HasPrefix(args[0], "-") {
		url, args = args[0], args[1:]
	}
	if err := fs.Parse(args); err != nil {
		return parseError(err)
	}
	if url == "" && fs.NArg() == 1 {
		url = fs.Arg(0)
	} else if fs.NArg() > 0 {
		return usage(fmt.Errorf("unexpected argument %q", fs.Arg(0)))
	}
	if url == "" || *conc < 1 || *d <= 0 || *prepared < 1 {
		return usage(errors.New("usage: thiqa bench tsa URL [--data DIR] [--concurrency N] [--duration D]"))
	}
	if _, err := timestamp.NewClient(url, timestamp.ClientOptions{}); err != nil {
		return usage(err)
	}
	reqs, err := prepareTSARequests(*prepared)
	if err != nil {
		return err
	}

	var raw, rawCopy func() (float64, error)
	rawDesc := "not measured (no --data)"
	if *dir != "" {
		folder, err := deps.Folder(*dir)
		if err != nil {
			return err
		}
		g := max(2, runtime.GOMAXPROCS(0))
		tok, err := folder.OpenToken(ctx, g)
		if err != nil {
			return err
		}
		defer tok.Close()
		unit, err := tok.TSAUnitKey(ctx)
		if err != nil {
			return err
		}
		label := unit.Label
		rawDesc = fmt.Sprintf("%s key %s, %d goroutines, session each", unit.Type, label, g)
		raw = func() (float64, error) { return tok.RawSignRate(ctx, label, g, *rawFor) }
		rawCopy = func() (float64, error) { return tok.RawSignRateSessionCopy(ctx, label, g, *rawFor) }
	}

	client := &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{
		MaxIdleConns: *conc * 2, MaxIdleConnsPerHost: *conc * 2, IdleConnTimeout: time.Minute,
	}}
	defer client.CloseIdleConnections()
	lg := &tsaLoad{client: client, url: url, reqs: reqs}
	if u, err := neturl.Parse(url); err == nil && u.Scheme == "http" {
		lg.addr, lg.wire = u.Host, wireRequests(u, reqs)
		if u.Port() == "" {
			lg.addr = net.JoinHostPort(u.Hostname(), "80")
		}
	}

	fmt.Fprintf(env.stdout, "thiqa bench tsa: %s, GOMAXPROCS=%d, concurrency %d, %s per phase, %d prepared SHA-256 requests (nonce, certReq)\n",
		url, runtime.GOMAXPROCS(0), *conc, *d, len(reqs))
	var raws, rawCopies []float64
	var copyErr error // the last failed measurement with a session copy
	measureRaw := func() error {
		if raw == nil {
			return nil
		}
		r, err := raw()
		if err != nil {
			return fmt.Errorf("raw PKCS#11 rate: %w", err)
		}
		raws = append(raws, r)
		// A token may refuse copies (the server then signs with the
		// object): report it, do not fail the benchmark.
		if r, err = rawCopy(); err != nil {
			copyErr = err
		} else {
			rawCopies = append(rawCopies, r)
		}
		return nil
	}
	if err := measureRaw(); err != nil {
		return err
	}
	if _, err := lg.closed(ctx, *conc, min(*d, time.Second)); err != nil { // warm-up
		return err
	}
	// The server's CPU per token (process_cpu_seconds_total from /metrics)
	// is steadier than rates on a shared machine.
	base := metricsBase(url)
	cpu0, cpuErr := scrapePhases(ctx, client, base)
	self0 := cpuTime()
	full, err := lg.closed(ctx, *conc, *d)
	selfUsed := cpuTime() - self0
	if err != nil {
		return err
	}
	cpu1, err := scrapePhases(ctx, client, base)
	cpuErr = errors.Join(cpuErr, err)
	h0, h0Err := scrapeTSALatency(ctx, client, base)
	half, err := lg.paced(ctx, full.rate/2, *d)
	if err != nil {
		return err
	}
	h1, h1Err := scrapeTSALatency(ctx, client, base)
	if err := measureRaw(); err != nil {
		return err
	}
	fmt.Fprintf(env.stdout, "full load:  %8.0f tokens/s  p50 %s  p99 %s  (%d tokens, %d refused or failed)\n",
		full.rate, full.lat.percentile(50).Round(time.Microsecond), full.lat.percentile(99).Round(time.Microsecond), full.ok, full.failed)
	fmt.Fprintf(env.stdout, "half load:  %8.0f tokens/s  p50 %s  p99 %s  from each request's scheduled time; p50 %s  p99 %s from its send (paced at %.0f/s)\n",
		half.rate, half.lat.percentile(50).Round(time.Microsecond), half.lat.percentile(99).Round(time.Microsecond),
		half.sent.percentile(50).Round(time.Microsecond), half.sent.percentile(99).Round(time.Microsecond), full.rate/2)
	if h0Err == nil && h1Err == nil {
		if le, ok := h1.sub(h0).quantile(0.99); ok {
			fmt.Fprintf(env.stdout, "half load:  server-side p99 <= %s (thiqa_tsa_request_duration_seconds: parse, record, sign; the rest of the latency above is HTTP and scheduling)\n", le)
		}
	}
	if _, ok := cpu0["cpu"]; ok && cpuErr == nil && full.ok > 0 {
		fmt.Fprintf(env.stdout, "server CPU: %8.0f µs per token at full load (process_cpu_seconds_total)\n", (cpu1["cpu"]-cpu0["cpu"])*1e6/float64(full.ok+full.failed))
	}
	if n := full.ok + full.failed; n > 0 && selfUsed > 0 {
		fmt.Fprintf(env.stdout, "client CPU: %8.0f µs per token at full load (this load generator, on the same machine)\n", float64(selfUsed.Microseconds())/float64(n))
	}
	if len(raws) > 0 {
		r := (raws[0] + raws[len(raws)-1]) / 2
		fmt.Fprintf(env.stdout, "raw HSM:    %8.0f signatures/s (%s, token object; mean of %.0f before and %.0f after)\n", r, rawDesc, raws[0], raws[len(raws)-1])
		switch len(rawCopies) {
		case 0:
			fmt.Fprintf(env.stdout, "raw HSM:    session copy n/a (%v)\n", copyErr)
			fmt.Fprintf(env.stdout, "ratio:      %8.2f of the raw sign rate (token object)\n", full.rate/r)
		default:
			rc := (rawCopies[0] + rawCopies[len(rawCopies)-1]) / 2
			how := fmt.Sprintf("mean of %.0f before and %.0f after", rawCopies[0], rawCopies[len(rawCopies)-1])
			if len(rawCopies) == 1 {
				how = fmt.Sprintf("one measurement; the other failed: %v", copyErr)
			}
			fmt.Fprintf(env.stdout, "raw HSM:    %8.0f signatures/s (the same with a session copy of the key, as the server signs; %s)\n", rc, how)
			fmt.Fprintf(env.stdout, "ratio:      %8.2f of the raw sign rate (token object), %.2f of the raw rate with a session copy\n", full.rate/r, full.rate/rc)
		}
	} else {
		fmt.Fprintf(env.stdout, "raw HSM:    %s\n", rawDesc)
	}
	if full.failed > 0 || half.failed > 0 {
		return fmt.Errorf("%d requests were not granted (first: %v)", full.failed+half.failed, firstErr(full.firstErr, half.firstErr))
	}
	return nil
}

// metricsBase is the scheme and host of the TSA URL, where /metrics is.
func metricsBase(raw string) string {
	u, err := neturl.Parse(raw)
	if err != nil {
		return raw
	}
	return u.Scheme + "://" + u.Host
}

func firstErr(errs ...error) error {
	for _, e := range errs {
		if e != nil {
			return e
		}
	}
	return nil
}

// prepareTSARequests builds n DER TimeStampReqs over random data, each
// with a fresh 64-bit nonce and certReq.
func prepareTSARequests(n int) ([][]byte, error) {
	out := make([][]byte, n)
	for i := range out {
		var data [32]byte
		if _, err := rand.Read(data[:]); err != nil {
			return nil, err
		}
		digest := sha256.Sum256(data[:])
		nonce, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 64))
		if err != nil {
			return nil, err
		}
		oid, _ := tsp.OIDFromHash(crypto.SHA256)
		req := tsp.Request{MessageImprint: tsp.MessageImprint{HashAlgorithm: oid, HashedMessage: digest[:]}, Nonce: nonce.Add(nonce, big.NewInt(1)), CertReq: true}
		if out[i], err = req.Marshal(); err != nil {
			return nil, err
		}
	}
	return out, nil
}

// tsaLoad sends prepared requests to a TSA: over its own HTTP/1.1
// connections (benchConn) for http URLs, through net/http otherwise.
type tsaLoad struct {
	client *http.Client
	url    string
	reqs   [][]byte
	// addr and wire are set for http URLs: the server's host:port and the
	// prepared requests, head and body, for benchConn.
	addr string
	wire [][]byte
	next atomic.Uint64
}

// sender returns a function sending one request, for one goroutine, and a
// function releasing what it holds.
func (l *tsaLoad) sender() (send func(ctx context.Context) error, done func()) {
	if l.wire == nil {
		return l.one, func() {}
	}
	c := newBenchConn(l.addr)
	return func(ctx context.Context) error {
		return c.roundTrip(ctx, l.wire[l.next.Add(1)%uint64(len(l.wire))])
	}, c.close
}

// loadResult is one phase's outcome.
type loadResult struct {
	rate     float64
	ok       int64
	failed   int64
	firstErr error
	lat      *latencies
	// sent holds the paced phase's latencies from the actual send, which
	// leave out the generator's own lag behind the schedule.
	sent *latencies
}

// one posts the next prepared request and checks that it was granted.
func (l *tsaLoad) one(ctx context.Context) error {
	body := l.reqs[l.next.Add(1)%uint64(len(l.reqs))]
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, l.url, bytes.NewReader(body))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", timestamp.QueryContentType)
	resp, err := l.client.Do(req)
	if err != nil {
		return err
	}
	raw, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	resp.Body.Close()
	if err != nil {
		return err
	}
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("HTTP %d", resp.StatusCode)
	}
	return checkGranted(raw)
}

// closed runs g goroutines sending back to back for d.
func (l *tsaLoad) closed(ctx context.Context, g int, d time.Duration) (*loadResult, error) {
	res := &loadResult{lat: &latencies{}}
	var mu sync.Mutex
	var wg sync.WaitGroup
	start := time.Now()
	deadline := start.Add(d)
	for range g {
		wg.Add(1)
		go func() {
			defer wg.Done()
			send, done := l.sender()
			defer done()
			local := make([]time.Duration, 0, 1<<14)
			var failed int64
			var first error
			for ctx.Err() == nil {
				t0 := time.Now()
				if t0.After(deadline) {
					break
				}
				if err := send(ctx); err != nil {
					failed++
					if first == nil {
						first = err
					}
					continue
				}
				local = append(local, time.Since(t0))
			}
			res.lat.add(local)
			mu.Lock()
			res.ok += int64(len(local))
			res.failed += failed
			if res.firstErr == nil {
				res.firstErr = first
			}
			mu.Unlock()
		}()
	}
	wg.Wait()
	res.rate = float64(res.ok) / time.Since(start).Seconds()
	return res, ctx.Err()
}

// paced sends at rate requests per second for d, open loop: each request
// has a scheduled time and its latency counts from then, so a stalled
// server is not hidden by the generator waiting for it.
func (l *tsaLoad) paced(ctx context.Context, rate float64, d time.Duration) (*loadResult, error) {
	res := &loadResult{lat: &latencies{}, sent: &latencies{}}
	if rate <= 0 {
		return res, errors.New("paced load: the full-load rate is zero")
	}
	interval := time.Duration(float64(time.Second) / rate)
	n := int(d / interval)
	due := make(chan time.Time, 1024)
	var mu sync.Mutex
	var wg sync.WaitGroup
	for range 64 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			send, done := l.sender()
			defer done()
			local := make([]time.Duration, 0, 1<<12)
			sent := make([]time.Duration, 0, 1<<12)
			for at := range due {
				t0 := time.Now()
				if err := send(ctx); err != nil {
					mu.Lock()
					res.failed++
					if res.firstErr == nil {
						res.firstErr = err
					}
					mu.Unlock()
					continue
				}
				local = append(local, time.Since(at))
				sent = append(sent, time.Since(t0))
			}
			res.lat.add(local)
			res.sent.add(sent)
			mu.Lock()
			res.ok += int64(len(local))
			mu.Unlock()
		}()
	}
	start := time.Now()
	for i := range n {
		at := start.Add(time.Duration(i) * interval)
		if w := time.Until(at); w > 0 {
			time.Sleep(w)
		}
		if ctx.Err() != nil {
			break
		}
		due <- at
	}
	close(due)
	wg.Wait()
	res.rate = float64(res.ok) / time.Since(start).Seconds()
	return res, ctx.Err()
}

// latencyHist is the cumulative granted-token latency histogram of the
// TSA's /metrics: upper bounds (seconds) and counts.
type latencyHist struct {
	le     []float64
	counts []float64
}

// sub returns h minus an earlier scrape of the same histogram.
func (h latencyHist) sub(before latencyHist) latencyHist {
	out := latencyHist{le: h.le, counts: slices.Clone(h.counts)}
	for i := range out.counts {
		if i < len(before.counts) && before.le[i] == h.le[i] {
			out.counts[i] -= before.counts[i]
		}
	}
	return out
}

// quantile returns the upper bound of the bucket holding quantile q.
func (h latencyHist) quantile(q float64) (time.Duration, bool) {
	if len(h.counts) == 0 || h.counts[len(h.counts)-1] <= 0 {
		return 0, false
	}
	want := q * h.counts[len(h.counts)-1]
	for i, c := range h.counts {
		if c >= want {
			if math.IsInf(h.le[i], 1) {
				return 0, false
			}
			return time.Duration(h.le[i] * float64(time.Second)), true
		}
	}
	return 0, false
}

// scrapeTSALatency reads the granted-token latency histogram from /metrics.
func scrapeTSALatency(ctx context.Context, client *http.Client, base string) (latencyHist, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, base+"/metrics", nil)
	if err != nil {
		return latencyHist{}, err
	}
	resp, err := client.Do(req)
	if err != nil {
		return latencyHist{}, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return latencyHist{}, fmt.Errorf("scraping /metrics: status %d", resp.StatusCode)
	}
	return parseTSALatency(resp.Body)
}

// parseTSALatency picks thiqa_tsa_request_duration_seconds_bucket
// {status="granted",le="…"} lines out of the Prometheus text format.
func parseTSALatency(r io.Reader) (latencyHist, error) {
	const prefix = `thiqa_tsa_request_duration_seconds_bucket{status="granted",le="`
	var h latencyHist
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		rest, ok := strings.CutPrefix(sc.Text(), prefix)
		if !ok {
			continue
		}
		le, val, ok := strings.Cut(rest, `"} `)
		if !ok {
			continue
		}
		bound, err1 := strconv.ParseFloat(le, 64)
		n, err2 := strconv.ParseFloat(strings.TrimSpace(val), 64)
		if err1 != nil || err2 != nil {
			continue
		}
		h.le, h.counts = append(h.le, bound), append(h.counts, n)
	}
	if err := sc.Err(); err != nil {
		return latencyHist{}, err
	}
	if len(h.le) == 0 {
		return latencyHist{}, errors.New("no thiqa_tsa_request_duration_seconds histogram in /metrics")
	}
	return h, nil
}
