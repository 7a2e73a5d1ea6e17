package bench

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/thiqa/thiqa/verify/report"
)

// verifyHTTP measures POST base/api/v1/verify of one document with
// conc connections for d (after a one-second warm-up): validations per
// second, p50/p99, the server's CPU per validation (with its pid) and the
// load generator's own, which shares the cores. The server's
// verify.ratePerSecond and burst must allow the load (429s stop the run),
// and verify.maxConcurrentPerClient the concurrency (default 2; beyond it
// requests wait, and 503s stop the run).
func verifyHTTP(ctx context.Context, env *env, base, in string, conc int, d time.Duration, pid int) error {
	doc, err := os.ReadFile(in)
	if err != nil {
		return err
	}
	u, err := url.Parse(strings.TrimRight(base, "/") + "/api/v1/verify")
	if err != nil {
		return usage(fmt.Errorf("--url: %w", err))
	}
	client := &http.Client{Timeout: time.Minute, Transport: &http.Transport{MaxIdleConns: 256, MaxIdleConnsPerHost: 256, IdleConnTimeout: time.Minute}}
	hdr := http.Header{"Content-Type": {"application/pdf"}}
	var bufs sync.Pool // *bytes.Buffer answers
	post := func(ctx context.Context) (*bytes.Buffer, error) {
		req := (&http.Request{Method: http.MethodPost, URL: u, Host: u.Host, Header: hdr, ContentLength: int64(len(doc)),
			Body: io.NopCloser(bytes.NewReader(doc)), Proto: "HTTP/1.1", ProtoMajor: 1, ProtoMinor: 1}).WithContext(ctx)
		resp, err := client.Do(req)
		if err != nil {
			return nil, err
		}
		defer resp.Body.Close()
		b, _ := bufs.Get().(*bytes.Buffer)
		if b == nil {
			b = new(bytes.Buffer)
		}
		b.Reset()
		if _, err := b.ReadFrom(resp.Body); err != nil {
			bufs.Put(b)
			return nil, fmt.Errorf("reading the report: %w", err)
		}
		if resp.StatusCode != http.StatusOK {
			defer bufs.Put(b)
			return nil, fmt.Errorf("POST %s: %d %.200s", u, resp.StatusCode, b.Bytes())
		}
		return b, nil
	}
	b, err := post(ctx)
	if err != nil {
		return err
	}
	var first report.Report
	if err := json.Unmarshal(b.Bytes(), &first); err != nil {
		return fmt.Errorf("decoding the report: %w", err)
	}
	bufs.Put(b)
	want := []byte(`"indication":"` + string(first.Indication) + `"`)
	op := func(ctx context.Context) error {
		b, err := post(ctx)
		if err != nil {
			return err
		}
		defer bufs.Put(b)
		if !bytes.Contains(b.Bytes(), want) {
			return fmt.Errorf("the verdict changed: %.200s", b.Bytes())
		}
		return nil
	}
	level := ""
	if len(first.Signatures) > 0 {
		level = first.Signatures[len(first.Signatures)-1].Level
	}
	fmt.Fprintf(env.stdout, "thiqa bench verify: POST %s, %d connections, %s; document %s, %.1f KiB, %s %s\n",
		u, conc, d, in, float64(len(doc))/1024, first.Indication, level)
	if _, err := measureVerify(ctx, conc, time.Second, op); err != nil { // warm-up
		return err
	}
	srv0 := serverCPUTime(pid)
	r, err := measureVerify(ctx, conc, d, op)
	if err != nil {
		return err
	}
	fmt.Fprintf(env.stdout, "validations   %d in %s: %.1f/s\n", r.n, r.elapsed.Round(time.Millisecond), r.rate)
	fmt.Fprintf(env.stdout, "latency       p50 %s  p99 %s\n", r.p50.Round(10*time.Microsecond), r.p99.Round(10*time.Microsecond))
	if r.n > 0 {
		fmt.Fprintf(env.stdout, "cpu           load generator %s per validation", r.cpu.Round(10*time.Microsecond))
		if pid > 0 {
			if per := (serverCPUTime(pid) - srv0) / time.Duration(r.n); per > 0 {
				fmt.Fprintf(env.stdout, "; server %s per validation (2-core ceiling %.0f/s)", per.Round(10*time.Microsecond), 2/per.Seconds())
			}
		}
		fmt.Fprintln(env.stdout)
	}
	return nil
}
