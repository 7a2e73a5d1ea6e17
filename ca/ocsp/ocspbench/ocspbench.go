// Package ocspbench is a lean OCSP load generator for `thiqa bench ocsp`:
// keep-alive HTTP/1.1 connections sending pre-built requests and reading
// responses with a minimal parser, so the generator costs the shared cores
// far less than net/http's client and the responder's rate shows.
package ocspbench

import (
	"bufio"
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"net"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"
)

// Options configures one run.
type Options struct {
	// URL is the responder's POST URL, e.g. http://127.0.0.1:8080/ocsp.
	URL string
	// Requests are DER OCSP requests, sent round-robin (ocsp.NewRequest).
	Requests [][]byte
	// Conns is the number of concurrent keep-alive connections (default 16).
	Conns int
	// Duration of the run (default 10s).
	Duration time.Duration
	// GET sends GET /ocsp/{base64} instead of POST.
	GET bool
}

// Result is what a run measured.
type Result struct {
	Responses int           // successful OCSP responses (responseStatus 0)
	Errors    int           // transport errors, HTTP errors, OCSP error statuses
	Elapsed   time.Duration //
	PerSecond float64       // Responses / Elapsed
	P50, P99  time.Duration // latency of successful responses
}

// String implements fmt.Stringer.
func (r Result) String() string {
	return fmt.Sprintf("%d responses in %s: %.0f/s, p50 %s, p99 %s, %d errors",
		r.Responses, r.Elapsed.Round(time.Millisecond), r.PerSecond, r.P50, r.P99, r.Errors)
}

// Run drives the responder until the duration ends or ctx is cancelled.
func Run(ctx context.Context, o Options) (Result, error) {
	if len(o.Requests) == 0 {
		return Result{}, errors.New("no requests")
	}
	if o.Conns <= 0 {
		o.Conns = 16
	}
	if o.Duration <= 0 {
		o.Duration = 10 * time.Second
	}
	u, err := url.Parse(o.URL)
	if err != nil || u.Scheme != "http" || u.Host == "" {
		return Result{}, fmt.Errorf("responder URL %q must be http://host:port/path", o.URL)
	}
	host := u.Host
	if u.Port() == "" {
		host = net.JoinHostPort(u.Hostname(), "80")
	}
	path := u.EscapedPath()
	if path == "" {
		path = "/"
	}
	wire := make([][]byte, len(o.Requests))
	for i, der := range o.Requests {
		if o.GET {
			p := strings.TrimRight(path, "/") + "/" + url.PathEscape(base64.StdEncoding.EncodeToString(der))
			wire[i] = []byte("GET " + p + " HTTP/1.1\r\nHost: " + u.Host + "\r\n\r\n")
		} else {
			wire[i] = append([]byte("POST "+path+" HTTP/1.1\r\nHost: "+u.Host+"\r\nContent-Type: application/ocsp-request\r\nContent-Length: "+
				strconv.Itoa(len(der))+"\r\n\r\n"), der...)
		}
	}
	ctx, cancel := context.WithTimeout(ctx, o.Duration)
	defer cancel()
	type connResult struct {
		lat  []time.Duration
		errs int
		err  error
	}
	results := make([]connResult, o.Conns)
	var wg sync.WaitGroup
	start := time.Now()
	for c := range o.Conns {
		wg.Go(func() {
			res := &results[c]
			d := net.Dialer{Timeout: 5 * time.Second}
			conn, err := d.DialContext(ctx, "tcp", host)
			if err != nil {
				res.err = err
				return
			}
			defer conn.Close()
			go func() { <-ctx.Done(); conn.SetDeadline(time.Now()) }()
			br := bufio.NewReaderSize(conn, 8192)
			body := make([]byte, 0, 4096)
			for i := c * 7919; ctx.Err() == nil; i++ {
				t0 := time.Now()
				if _, err := conn.Write(wire[i%len(wire)]); err != nil {
					break
				}
				ok, err := readResponse(br, &body)
				if err != nil {
					if ctx.Err() == nil {
						res.errs++
					}
					break
				}
				if !ok {
					res.errs++
					continue
				}
				res.lat = append(res.lat, time.Since(t0))
			}
		})
	}
	wg.Wait()
	elapsed := time.Since(start)
	var all []time.Duration
	out := Result{Elapsed: elapsed}
	for _, r := range results {
		if r.err != nil && len(r.lat) == 0 && out.Responses == 0 && r.errs == 0 {
			err = r.err
		}
		all = append(all, r.lat...)
		out.Errors += r.errs
	}
	out.Responses = len(all)
	if out.Responses == 0 {
		if err == nil {
			err = errors.New("no successful response")
		}
		return out, err
	}
	slices.Sort(all)
	out.P50, out.P99 = all[len(all)/2], all[len(all)*99/100]
	out.PerSecond = float64(out.Responses) / elapsed.Seconds()
	return out, nil
}

// readResponse reads one HTTP/1.1 response with a Content-Length body and
// reports whether it was 200 with a successful OCSPResponse.
func readResponse(br *bufio.Reader, body *[]byte) (bool, error) {
	status, err := br.ReadSlice('\n')
	if err != nil {
		return false, err
	}
	ok := len(status) >= 12 && string(status[9:12]) == "200"
	n := -1
	for {
		line, err := br.ReadSlice('\n')
		if err != nil {
			return false, err
		}
		if len(line) <= 2 {
			break
		}
		if len(line) > 16 && strings.EqualFold(string(line[:15]), "content-length:") {
			n, err = strconv.Atoi(strings.TrimSpace(string(line[15:])))
			if err != nil {
				return false, fmt.Errorf("bad Content-Length: %w", err)
			}
		}
	}
	if n < 0 {
		return false, errors.New("response without Content-Length")
	}
	*body = slices.Grow((*body)[:0], n)[:n]
	if _, err := io.ReadFull(br, *body); err != nil {
		return false, err
	}
	return ok && successful(*body), nil
}

// successful reports whether der is an OCSPResponse with responseStatus 0.
func successful(der []byte) bool {
	if len(der) < 5 || der[0] != 0x30 {
		return false
	}
	i := 2
	if der[1]&0x80 != 0 {
		i += int(der[1] & 0x7f)
	}
	return len(der) >= i+3 && der[i] == 0x0a && der[i+1] == 0x01 && der[i+2] == 0x00
}
