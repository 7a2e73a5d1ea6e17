package bench

import (
	"bufio"
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"net/http"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/thiqa/thiqa/ca"
	"github.com/thiqa/thiqa/policies"
)

// issuePhases are the phases of thiqa_ca_issue_phase_seconds.
var issuePhases = []string{"validate", "lint", "store", "sign", "verify", "audit"}

// Issue is a load generator for POST /api/v1/certificates (`thiqa bench
// issue`): CSRs and a registration-officer token are prepared in advance,
// then requests are sent concurrently. It reports the rate, latencies, the
// raw PKCS#11 sign rate of the issuing CA's key type measured in the same
// run, and the share of server time per issuance phase (from /metrics,
// scraped before and after).
func Issue(ctx context.Context, deps Deps, args []string, stdout, stderr io.Writer) error {
	env := &env{deps: deps, stdout: stdout, stderr: stderr}
	fs := newFlags("bench issue", env)
	dir := fs.String("data", "", "data folder of the server (required: token, development issuer key, configuration)")
	base := fs.String("url", "", "base URL of a running `thiqa serve` (required), e.g. http://127.0.0.1:8080")
	conc := fs.Int("concurrency", 8, "concurrent requests")
	n := fs.Int("requests", 2000, "measured requests")
	warm := fs.Int("warmup", 100, "requests sent before measuring")
	profile := fs.String("profile", policies.ProfileCitizenSigning, "certificate profile")
	rawFor := fs.Duration("raw-duration", 2*time.Second, "measuring time of the raw HSM sign rate")
	country := countryFlag(fs)
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if *base == "" || *conc < 1 || *n < 1 || *warm < 0 {
		return usage(errors.New("--url is required; --concurrency and --requests must be positive"))
	}
	*base = strings.TrimRight(*base, "/")
	folder, err := deps.Folder(*dir)
	if err != nil {
		return err
	}
	cc, err := subjectCountry(folder, *country)
	if err != nil {
		return err
	}
	issuerKey, err := folder.IssuerKey(*profile)
	if err != nil {
		return err
	}
	tok, err := folder.OpenToken(ctx, *conc)
	if err != nil {
		return err
	}
	defer tok.Close()
	bearer, err := tok.MintToken(ctx, "bench-officer", policies.RoleRegistrationOfficer, time.Hour)
	if err != nil {
		return err
	}

	fmt.Fprintf(env.stdout, "thiqa bench issue: %s, profile %s, %d requests (+%d warm-up), concurrency %d, GOMAXPROCS=%d\n",
		*base, *profile, *n, *warm, *conc, runtime.GOMAXPROCS(0))
	bodies, err := prepareIssueBodies(*profile, cc, *warm+*n)
	if err != nil {
		return err
	}
	client := &http.Client{Timeout: time.Minute, Transport: &http.Transport{MaxIdleConnsPerHost: *conc, MaxConnsPerHost: *conc}}
	if *warm > 0 {
		if _, _, err := issueLoad(ctx, client, *base, bearer, bodies[:*warm], *conc); err != nil {
			return err
		}
	}
	before, err := scrapePhases(ctx, client, *base)
	if err != nil {
		return err
	}
	self0 := cpuTime()
	start := time.Now()
	lat, failures, err := issueLoad(ctx, client, *base, bearer, bodies[*warm:], *conc)
	if err != nil {
		return err
	}
	elapsed := time.Since(start)
	selfUsed := cpuTime() - self0
	after, err := scrapePhases(ctx, client, *base)
	if err != nil {
		return err
	}
	ok := len(lat.all)
	rate := float64(ok) / elapsed.Seconds()

	issuer, err := tok.Key(ctx, issuerKey)
	if err != nil {
		return fmt.Errorf("issuing CA key %q: %w", issuerKey, err)
	}
	raw, err := tok.RawSignRate(ctx, issuerKey, *conc, *rawFor)
	if err != nil {
		return fmt.Errorf("raw PKCS#11 rate: %w", err)
	}
	fmt.Fprintf(env.stdout, "issued        %d in %s: %.0f certificates/s, %d errors\n", ok, elapsed.Round(time.Millisecond), rate, failures)
	fmt.Fprintf(env.stdout, "latency       p50 %s  p99 %s\n", lat.percentile(50).Round(10*time.Microsecond), lat.percentile(99).Round(10*time.Microsecond))
	fmt.Fprintf(env.stdout, "raw HSM sign  %.0f/s (%s, %s, %d sessions, token object, same run) -> ratio %.2f\n", raw, issuer.Type, issuerKey, *conc, rate/raw)
	// The server signs with a session copy of the CA key (hsm/sessioncopy.go).
	if rc, err := tok.RawSignRateSessionCopy(ctx, issuerKey, *conc, *rawFor); err == nil {
		fmt.Fprintf(env.stdout, "raw HSM sign  %.0f/s (the same with a session copy, as the server signs) -> ratio %.2f\n", rc, rate/rc)
	} else {
		fmt.Fprintf(env.stdout, "raw HSM sign  session copy n/a (%v)\n", err)
	}
	var total float64
	for _, ph := range issuePhases {
		total += after[ph+"_sum"] - before[ph+"_sum"]
	}
	if cpu := after["cpu"] - before["cpu"]; cpu > 0 && ok > 0 {
		perCert := cpu / float64(ok)
		fmt.Fprintf(env.stdout, "server CPU    %.2f ms/cert (SoftHSM included, it runs in the server process) -> %.0f certificates/s per dedicated core\n",
			1000*perCert, 1/perCert)
	}
	if ok > 0 && selfUsed > 0 {
		fmt.Fprintf(env.stdout, "client CPU    %.2f ms/cert (this load generator, on the same machine)\n", 1000*selfUsed.Seconds()/float64(ok))
	}
	if total > 0 && ok > 0 {
		var parts []string
		for _, ph := range issuePhases {
			d := after[ph+"_sum"] - before[ph+"_sum"]
			parts = append(parts, fmt.Sprintf("%s %.0f%% (%.2f ms/cert)", ph, 100*d/total, 1000*d/float64(ok)))
		}
		fmt.Fprintf(env.stdout, "server time   %s\n", strings.Join(parts, ", "))
	}
	return nil
}

// prepareIssueBodies builds n request bodies for subjects of country, each
// with a fresh P-256 key's CSR.
func prepareIssueBodies(profile, country string, n int) ([][]byte, error) {
	out := make([][]byte, n)
	for i := range out {
		k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		if err != nil {
			return nil, err
		}
		der, err := x509.CreateCertificateRequest(rand.Reader, &x509.CertificateRequest{}, k)
		if err != nil {
			return nil, err
		}
		subject := map[string]string{"givenName": "Bench", "surname": "Citizen", "commonName": "Bench Citizen " + strconv.Itoa(i),
			"civilNumber": strconv.Itoa(10000000 + i), "country": country}
		if profile == policies.ProfileOrganisationSeal {
			subject = map[string]string{"organizationName": "Bench Agency", "organizationIdentifier": orgIdentifier(country, 1000000+i),
				"commonName": "Bench Agency Seal " + strconv.Itoa(i), "country": country}
		}
		out[i], err = json.Marshal(ca.IssueRequest{Profile: profile, Subject: subject,
			CSR: string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE REQUEST", Bytes: der}))})
		if err != nil {
			return nil, err
		}
	}
	return out, nil
}

// issueLoad POSTs every body from conc workers and returns the latencies of
// the 201 answers that carry a certificate, and the number of other
// outcomes. Each worker reuses its request headers and response buffer, so
// the generator (on the same cores as the server) costs little.
func issueLoad(ctx context.Context, client *http.Client, base, bearer string, bodies [][]byte, conc int) (*latencies, int64, error) {
	lat := &latencies{}
	var next, failures atomic.Int64
	var firstErr sync.Once
	var reported string
	var wg sync.WaitGroup
	url := base + "/api/v1/certificates"
	hdr := http.Header{"Authorization": {"Bearer " + bearer}, "Content-Type": {"application/json"}}
	for range conc {
		wg.Go(func() {
			local := make([]time.Duration, 0, len(bodies)/conc+1)
			buf := make([]byte, 0, 8<<10)
			body := &bytes.Reader{}
			for ctx.Err() == nil {
				i := next.Add(1) - 1
				if i >= int64(len(bodies)) {
					break
				}
				t0 := time.Now()
				var code int
				var msg string
				code, buf, msg = postIssue(ctx, client, url, hdr, body, bodies[i], buf)
				if code != http.StatusCreated {
					failures.Add(1)
					firstErr.Do(func() { reported = fmt.Sprintf("%d %s", code, msg) })
					continue
				}
				local = append(local, time.Since(t0))
			}
			lat.add(local)
		})
	}
	wg.Wait()
	if err := ctx.Err(); err != nil {
		return nil, 0, err
	}
	if failures.Load() == int64(len(bodies)) {
		return nil, 0, fmt.Errorf("every issuance request failed, e.g. %s", reported)
	}
	return lat, failures.Load(), nil
}

// certificateField is how a 201 answer's certificate starts (ca.IssueResponse).
var certificateField = []byte(`"certificate":"-----BEGIN CERTIFICATE-----`)

// postIssue sends one issuance request, reading the answer into buf (grown
// and returned for reuse). A 201 counts only with a PEM certificate in it;
// otherwise the status (or 0) and a short message are returned.
func postIssue(ctx context.Context, client *http.Client, url string, hdr http.Header, body *bytes.Reader, payload, buf []byte) (int, []byte, string) {
	body.Reset(payload)
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, body)
	if err != nil {
		return 0, buf, err.Error()
	}
	req.Header = hdr // read-only for the transport, shared by the worker's requests
	resp, err := client.Do(req)
	if err != nil {
		return 0, buf, err.Error()
	}
	buf, err = readInto(buf[:0], resp.Body, 1<<20)
	resp.Body.Close()
	switch {
	case err != nil:
		return 0, buf, "reading the answer: " + err.Error()
	case resp.StatusCode != http.StatusCreated:
		return resp.StatusCode, buf, oneLine(string(buf))
	case !bytes.Contains(buf, certificateField):
		return 0, buf, "201 without a certificate: " + oneLine(string(buf[:min(len(buf), 200)]))
	}
	return resp.StatusCode, buf, ""
}

// readInto appends r's content to buf, up to limit bytes.
func readInto(buf []byte, r io.Reader, limit int) ([]byte, error) {
	for len(buf) < limit {
		if len(buf) == cap(buf) {
			buf = append(buf, 0)[:len(buf)]
		}
		n, err := r.Read(buf[len(buf):min(cap(buf), limit)])
		buf = buf[:len(buf)+n]
		if err == io.EOF {
			return buf, nil
		}
		if err != nil {
			return buf, err
		}
	}
	return buf, errors.New("answer too large")
}

// scrapePhases reads the sums and counts of thiqa_ca_issue_phase_seconds
// and the server's process_cpu_seconds_total from /metrics, keyed
// "lint_sum", "lint_count", ..., "cpu".
func scrapePhases(ctx context.Context, client *http.Client, base string) (map[string]float64, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, base+"/metrics", nil)
	if err != nil {
		return nil, err
	}
	resp, err := client.Do(req)
	if err != nil {
		return nil, fmt.Errorf("scraping /metrics: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("scraping /metrics: status %d", resp.StatusCode)
	}
	return parsePhases(resp.Body)
}

// parsePhases reads the Prometheus text format, keeping the issuance phase
// sums and counts and the process CPU time.
func parsePhases(r io.Reader) (map[string]float64, error) {
	out := map[string]float64{}
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if v, ok := strings.CutPrefix(line, "process_cpu_seconds_total "); ok {
			if f, err := strconv.ParseFloat(strings.TrimSpace(v), 64); err == nil {
				out["cpu"] = f
			}
		}
		for _, kind := range []string{"sum", "count"} {
			rest, ok := strings.CutPrefix(line, "thiqa_ca_issue_phase_seconds_"+kind+`{phase="`)
			if !ok {
				continue
			}
			phase, val, ok := strings.Cut(rest, `"} `)
			if !ok || !slices.Contains(issuePhases, phase) {
				continue
			}
			if v, err := strconv.ParseFloat(strings.TrimSpace(val), 64); err == nil {
				out[phase+"_"+kind] = v
			}
		}
	}
	return out, sc.Err()
}
