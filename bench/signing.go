package bench

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/thiqa/thiqa/ca"
	"github.com/thiqa/thiqa/internal/samplepdf"
	"github.com/thiqa/thiqa/policies"
	"github.com/thiqa/thiqa/signing"
	"github.com/thiqa/thiqa/signing/csc"
)

// benchSetup is what the signing load generators share: the server URL, a
// client, the token (for tokens and the raw HSM rate), and the country of
// the subjects they have issued (--country, by default the deployment's).
type benchSetup struct {
	url     string
	client  *http.Client
	tok     Token
	rawFor  time.Duration
	country string
}

func newBenchSetup(ctx context.Context, env *env, name string, args []string, extra func(fs *flag.FlagSet)) (*benchSetup, *flag.FlagSet, error) {
	fs := newFlags(name, env)
	dir := fs.String("data", "", "data folder of the server (required: tokens are minted and the raw HSM rate measured on its token)")
	rawFor := fs.Duration("raw-duration", 2*time.Second, "measuring time of each raw HSM rate measurement")
	country := countryFlag(fs)
	extra(fs)
	var url string
	if len(args) > 0 && !strings.HasPrefix(args[0], "-") {
		url, args = args[0], args[1:]
	}
	if err := fs.Parse(args); err != nil {
		return nil, nil, parseError(err)
	}
	if url == "" && fs.NArg() == 1 {
		url = fs.Arg(0)
	}
	if url == "" || *dir == "" {
		return nil, nil, usage(fmt.Errorf("usage: thiqa %s URL --data DIR [flags]", name))
	}
	folder, err := env.deps.Folder(*dir)
	if err != nil {
		return nil, nil, err
	}
	cc, err := subjectCountry(folder, *country)
	if err != nil {
		return nil, nil, err
	}
	tok, err := folder.OpenToken(ctx, max(2, runtime.GOMAXPROCS(0)))
	if err != nil {
		return nil, nil, err
	}
	return &benchSetup{url: strings.TrimRight(url, "/"), tok: tok, rawFor: *rawFor, country: cc, client: &http.Client{Timeout: 5 * time.Minute,
		Transport: &http.Transport{MaxIdleConns: 128, MaxIdleConnsPerHost: 128, IdleConnTimeout: time.Minute}}}, fs, nil
}

// post sends body and returns the status and the reply.
func (b *benchSetup) post(ctx context.Context, path, token, ctype string, body io.Reader, hdr map[string]string) (int, []byte, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, b.url+path, body)
	if err != nil {
		return 0, nil, err
	}
	req.Header.Set("Content-Type", ctype)
	req.Header.Set("Authorization", "Bearer "+token)
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	resp, err := b.client.Do(req)
	if err != nil {
		return 0, nil, err
	}
	defer resp.Body.Close()
	out, err := io.ReadAll(resp.Body)
	return resp.StatusCode, out, err
}

func (b *benchSetup) postJSON(ctx context.Context, path, token string, in, out any) error {
	raw, _ := json.Marshal(in)
	code, body, err := b.post(ctx, path, token, "application/json", bytes.NewReader(raw), nil)
	if err != nil {
		return err
	}
	if code/100 != 2 {
		return fmt.Errorf("%s: %d %s", path, code, body)
	}
	if out != nil {
		return json.Unmarshal(body, out)
	}
	return nil
}

// credential issues a keyInHSM certificate through the CA API and returns
// the answer (its credentialID, and the first PIN's activationCode when the
// server has signing.pinPolicy.firstPINActivation on).
func (b *benchSetup) credential(ctx context.Context, profile string, subject map[string]string) (*ca.IssueResponse, error) {
	officer, err := b.tok.MintToken(ctx, "bench-officer", policies.RoleRegistrationOfficer, time.Hour)
	if err != nil {
		return nil, err
	}
	var out ca.IssueResponse
	if err := b.postJSON(ctx, "/api/v1/certificates", officer, ca.IssueRequest{Profile: profile, Subject: subject, KeyInHSM: true}, &out); err != nil {
		return nil, err
	}
	return &out, nil
}

// firstPIN sets the first PIN of the credential issued: with the
// activation code its issuance answered (signing.pinPolicy.firstPINActivation:
// the server refuses the bearer token alone, 409), else with the token
// alone, as a citizen does.
func (b *benchSetup) firstPIN(ctx context.Context, issued *ca.IssueResponse, token, value string) error {
	path := "/api/v1/credentials/" + url.PathEscape(issued.CredentialID) + "/pin"
	if issued.ActivationCode != "" {
		return b.postJSON(ctx, path+"/activate", token, signing.PINActivateRequest{ActivationCode: issued.ActivationCode, PIN: value}, nil)
	}
	return b.postJSON(ctx, path, token, signing.PINRequest{PIN: value}, nil)
}

// closedLoop runs op from conc goroutines for d and returns operations per
// second (each op may count n operations) and latencies.
func closedLoop(ctx context.Context, conc int, d time.Duration, op func(ctx context.Context) (int, error)) (float64, *latencies, error) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var done atomic.Int64
	var firstErr error
	var once sync.Once
	lat := &latencies{}
	var wg sync.WaitGroup
	start := time.Now()
	deadline := start.Add(d)
	for range conc {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var mine []time.Duration
			for time.Now().Before(deadline) && ctx.Err() == nil {
				t0 := time.Now()
				n, err := op(ctx)
				if err != nil {
					once.Do(func() { firstErr = err; cancel() })
					break
				}
				mine = append(mine, time.Since(t0))
				done.Add(int64(n))
			}
			lat.add(mine)
		}()
	}
	wg.Wait()
	return float64(done.Load()) / time.Since(start).Seconds(), lat, firstErr
}

// Seal measures POST /api/v1/seal (`thiqa bench seal`) on a ~100 KB PDF at several levels
// (P-256 seal key on the token), with the raw PKCS#11 rate of the same key
// before and after, and the server's peak RSS while sealing a large PDF.
func Seal(ctx context.Context, deps Deps, args []string, stdout, stderr io.Writer) error {
	env := &env{deps: deps, stdout: stdout, stderr: stderr}
	var conc *int
	var d *time.Duration
	var levels, org *string
	var size, large *int64
	var pid *int
	b, _, err := newBenchSetup(ctx, env, "bench seal", args, func(fs *flag.FlagSet) {
		conc = fs.Int("concurrency", 16, "concurrent requests")
		d = fs.Duration("duration", 5*time.Second, "measuring time per level")
		levels = fs.String("levels", "B-B,B-T,B-LT", "levels to measure")
		org = fs.String("org", "", "organizationIdentifier of the benchmark agency (default NTR<country>-9900001: NTROM-9900001 in Oman)")
		size = fs.Int64("size", 100<<10, "size of the sample PDF in bytes")
		large = fs.Int64("large", 0, "also seal one PDF of this many bytes (e.g. 209715200) and report the server's peak RSS")
		pid = fs.Int("server-pid", 0, "process ID of the server, for its peak RSS (VmHWM)")
	})
	if err != nil {
		return err
	}
	defer b.tok.Close()
	if *org == "" {
		*org = orgIdentifier(b.country, 9900001)
	}
	sub := map[string]string{"organizationName": "Benchmark Agency", "organizationIdentifier": *org, "commonName": "Benchmark Agency Seal", "country": b.country}
	issued, err := b.credential(ctx, policies.ProfileOrganisationSeal, sub)
	if err != nil {
		return fmt.Errorf("issuing the seal credential: %w", err)
	}
	cred := issued.CredentialID
	token, err := b.tok.MintToken(ctx, *org, policies.RoleAgency, time.Hour)
	if err != nil {
		return err
	}
	var pdf bytes.Buffer
	if err := samplepdf.Write(&pdf, *size); err != nil {
		return err
	}
	fmt.Fprintf(env.stdout, "thiqa bench seal: %s, GOMAXPROCS=%d (this process), concurrency %d, %s per level, %d-byte PDF, credential %s\n",
		b.url, runtime.GOMAXPROCS(0), *conc, *d, pdf.Len(), cred)
	raw := func() string {
		g := max(2, runtime.GOMAXPROCS(0))
		r, err := b.tok.RawSignRate(ctx, cred, g, b.rawFor)
		if err != nil {
			return "error: " + err.Error()
		}
		out := fmt.Sprintf("%.0f/s with the token object", r)
		// The server signs seals with a session copy of the key.
		if r, err = b.tok.RawSignRateSessionCopy(ctx, cred, g, b.rawFor); err != nil {
			return out + ", session copy n/a (" + err.Error() + ")"
		}
		return out + fmt.Sprintf(", %.0f/s with a session copy (as the server signs seals)", r)
	}
	fmt.Fprintf(env.stdout, "raw PKCS#11 P-256 sign rate of the seal key (session per goroutine): %s before\n", raw())
	for _, lv := range strings.Split(*levels, ",") {
		if lv = strings.TrimSpace(lv); lv == "" {
			continue // --levels "" measures only --large
		}
		op, err := b.sealOp(lv, cred, token, pdf.Bytes())
		if err != nil {
			return err
		}
		if _, _, err := closedLoop(ctx, *conc, min(*d, time.Second), op); err != nil { // warm-up
			return err
		}
		cpu0, self0 := serverCPUTime(*pid), serverCPUTime(os.Getpid())
		t0 := time.Now()
		rate, lat, err := closedLoop(ctx, *conc, *d, op)
		if err != nil {
			return err
		}
		ops := rate * time.Since(t0).Seconds()
		self := ""
		if ops > 0 {
			self = fmt.Sprintf("  load generator CPU %s/op", ((serverCPUTime(os.Getpid()) - self0) / time.Duration(ops)).Round(time.Microsecond))
		}
		fmt.Fprintf(env.stdout, "seal %-5s %7.0f/s  p50 %8s  p99 %8s%s%s\n", lv, rate, lat.percentile(50).Round(time.Microsecond), lat.percentile(99).Round(time.Microsecond),
			cpuPerOp(*pid, cpu0, ops), self)
	}
	fmt.Fprintf(env.stdout, "raw PKCS#11 P-256 sign rate of the seal key: %s after\n", raw())
	if *large > 0 {
		if err := sealLarge(ctx, env, b, token, cred, *large, *pid); err != nil {
			return err
		}
	}
	return nil
}

// sealOp returns one seal request of pdf at level lv, as cheap for the
// load generator as it can be (it shares the server's cores): the URL
// parsed once, the headers prepared once, the answer read into a buffer
// reused by the next request on the same goroutine. It still checks that
// each answer is a 200 with a PDF of the announced length.
func (b *benchSetup) sealOp(lv, cred, token string, pdf []byte) (func(ctx context.Context) (int, error), error) {
	u, err := url.Parse(b.url + "/api/v1/seal?level=" + lv + "&credential=" + cred)
	if err != nil {
		return nil, err
	}
	hdr := http.Header{"Content-Type": {"application/pdf"}, "Authorization": {"Bearer " + token}}
	var bufs sync.Pool // *[]byte answer buffers
	getBody := func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(pdf)), nil }
	return func(ctx context.Context) (int, error) {
		req := (&http.Request{Method: http.MethodPost, URL: u, Host: u.Host, Header: hdr, ContentLength: int64(len(pdf)),
			Body: io.NopCloser(bytes.NewReader(pdf)), GetBody: getBody, Proto: "HTTP/1.1", ProtoMajor: 1, ProtoMinor: 1}).WithContext(ctx)
		resp, err := b.client.Do(req)
		if err != nil {
			return 1, err
		}
		defer resp.Body.Close()
		bp, _ := bufs.Get().(*[]byte)
		if bp == nil {
			bp = new([]byte)
		}
		defer bufs.Put(bp)
		n := resp.ContentLength
		if resp.StatusCode != http.StatusOK || n <= 0 || n > 64<<20 {
			body, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<10))
			return 1, fmt.Errorf("seal %s: %d (length %d) %.200s", lv, resp.StatusCode, n, body)
		}
		if int64(cap(*bp)) < n {
			*bp = make([]byte, n+n/4)
		}
		body := (*bp)[:n]
		if _, err := io.ReadFull(resp.Body, body); err != nil {
			return 1, fmt.Errorf("seal %s: reading the answer: %w", lv, err)
		}
		if !bytes.HasPrefix(body, pdf[:8]) || !bytes.Contains(body[len(pdf):], []byte("/ETSI.CAdES.detached")) {
			return 1, fmt.Errorf("seal %s: the answer is not the sealed PDF", lv)
		}
		return 1, nil
	}, nil
}

// sealLarge seals one large PDF at B-B, streaming it from a temporary
// file, and reports the server's peak RSS during the request (VmHWM, reset
// first through /proc/PID/clear_refs).
func sealLarge(ctx context.Context, env *env, b *benchSetup, token, cred string, size int64, pid int) error {
	f, err := os.CreateTemp("", "thiqa-bench-large-*.pdf")
	if err != nil {
		return err
	}
	defer os.Remove(f.Name())
	defer f.Close()
	if err := samplepdf.Write(f, size); err != nil {
		return err
	}
	st, err := f.Stat()
	if err != nil {
		return err
	}
	before := "unknown (no --server-pid)"
	if pid > 0 {
		if err := os.WriteFile(fmt.Sprintf("/proc/%d/clear_refs", pid), []byte("5"), 0); err != nil {
			before = "not reset: " + err.Error()
		} else {
			before = "reset"
		}
		if h, err := vmHWM(pid); err == nil {
			before += fmt.Sprintf(", VmHWM %.1f MiB, RSS now", float64(h)/1024)
		}
	}
	if _, err := f.Seek(0, io.SeekStart); err != nil {
		return err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, b.url+"/api/v1/seal?level=B-B&credential="+cred, f)
	if err != nil {
		return err
	}
	req.ContentLength = st.Size()
	req.Header.Set("Content-Type", "application/pdf")
	req.Header.Set("Authorization", "Bearer "+token)
	start := time.Now()
	resp, err := b.client.Do(req)
	if err != nil {
		return err
	}
	n, err := io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if err != nil || resp.StatusCode != http.StatusOK {
		return fmt.Errorf("sealing the large PDF: %d %v", resp.StatusCode, err)
	}
	fmt.Fprintf(env.stdout, "large: sealed %d bytes -> %d bytes at B-B in %s", st.Size(), n, time.Since(start).Round(time.Millisecond))
	if pid > 0 {
		h, err := vmHWM(pid)
		if err != nil {
			return err
		}
		fmt.Fprintf(env.stdout, "; server peak RSS (VmHWM) %.1f MiB (peak counter %s)", float64(h)/1024, strings.TrimSuffix(before, ", RSS now"))
	}
	fmt.Fprintln(env.stdout)
	return nil
}

// cpuPerOp describes the server's CPU time per operation since cpu0 and
// the rate two dedicated cores would sustain at that cost.
func cpuPerOp(pid int, cpu0 time.Duration, ops float64) string {
	if pid <= 0 || ops <= 0 {
		return ""
	}
	per := (serverCPUTime(pid) - cpu0) / time.Duration(ops)
	if per <= 0 {
		return ""
	}
	return fmt.Sprintf("  server CPU %s/op (2-core ceiling %.0f/s)", per.Round(time.Microsecond), 2/per.Seconds())
}

// vmHWM returns a process's peak resident set size in KiB.
func vmHWM(pid int) (int64, error) {
	raw, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, err
	}
	for _, line := range strings.Split(string(raw), "\n") {
		if rest, ok := strings.CutPrefix(line, "VmHWM:"); ok {
			return strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(rest), " kB"), 10, 64)
		}
	}
	return 0, errors.New("no VmHWM in /proc status")
}

// Sign measures the citizen paths (`thiqa bench sign`): signatures/signHash (SADs prepared
// in advance with credentials/authorize, --batch hashes per call), with the
// raw PKCS#11 rate of the same key, and POST /api/v1/sign (PIN checked per
// document).
func Sign(ctx context.Context, deps Deps, args []string, stdout, stderr io.Writer) error {
	env := &env{deps: deps, stdout: stdout, stderr: stderr}
	var conc *int
	var d *time.Duration
	var batch, sads *int
	var civil *string
	var pid *int
	b, _, err := newBenchSetup(ctx, env, "bench sign", args, func(fs *flag.FlagSet) {
		pid = fs.Int("server-pid", 0, "process ID of the server, for its CPU time per signature")
		conc = fs.Int("concurrency", 8, "concurrent requests")
		d = fs.Duration("duration", 5*time.Second, "measuring time per phase")
		batch = fs.Int("batch", 100, "hashes per signHash call (one SAD each)")
		sads = fs.Int("sads", 400, "SADs to prepare before measuring signHash")
		civil = fs.String("civil-number", "99000001", "civil number of the benchmark citizen")
	})
	if err != nil {
		return err
	}
	defer b.tok.Close()
	sub := map[string]string{"givenName": "Bench", "surname": "Citizen", "commonName": "Bench Citizen", "civilNumber": *civil, "country": b.country}
	issued, err := b.credential(ctx, policies.ProfileCitizenSigning, sub)
	if err != nil {
		return fmt.Errorf("issuing the citizen credential: %w", err)
	}
	cred := issued.CredentialID
	token, err := b.tok.MintToken(ctx, *civil, policies.RoleCitizen, time.Hour)
	if err != nil {
		return err
	}
	const benchPIN = "bench-pin-2468"
	if err := b.firstPIN(ctx, issued, token, benchPIN); err != nil {
		return fmt.Errorf("setting the citizen's PIN: %w", err)
	}
	fmt.Fprintf(env.stdout, "thiqa bench sign: %s, GOMAXPROCS=%d (this process), concurrency %d, %s per phase, credential %s\n",
		b.url, runtime.GOMAXPROCS(0), *conc, *d, cred)
	raw := func() float64 {
		r, err := b.tok.RawSignRate(ctx, cred, max(2, runtime.GOMAXPROCS(0)), b.rawFor)
		if err != nil {
			return 0
		}
		return r
	}
	// Prepare SADs: each authorises --batch distinct random hashes.
	type prepared struct {
		sad    string
		hashes []string
	}
	queue := make(chan prepared, *sads)
	t0 := time.Now()
	_, authLat, err := closedLoop(ctx, 4, time.Hour, func(ctx context.Context) (int, error) {
		if len(queue) >= *sads {
			return 0, errStopLoop
		}
		p := prepared{hashes: make([]string, *batch)}
		for i := range p.hashes {
			var x [32]byte
			rand.Read(x[:])
			h := sha256.Sum256(x[:])
			p.hashes[i] = base64.StdEncoding.EncodeToString(h[:])
		}
		var out csc.AuthorizeResponse
		if err := b.postJSON(ctx, "/csc/v2/credentials/authorize", token, csc.AuthorizeRequest{CredentialID: cred, NumSignatures: *batch,
			Hashes: p.hashes, HashAlgorithmOID: "2.16.840.1.101.3.4.2.1", PIN: benchPIN}, &out); err != nil {
			return 0, err
		}
		p.sad = out.SAD
		select {
		case queue <- p:
		default:
			return 0, errStopLoop
		}
		return 1, nil
	})
	if err != nil && !errors.Is(err, errStopLoop) {
		return err
	}
	close(queue)
	fmt.Fprintf(env.stdout, "authorize (PIN check, argon2id): %d SADs in %s, p50 %s, p99 %s\n", len(queue), time.Since(t0).Round(time.Millisecond),
		authLat.percentile(50).Round(time.Microsecond), authLat.percentile(99).Round(time.Microsecond))
	rawBefore := raw()
	cpu0, t1 := serverCPUTime(*pid), time.Now()
	rate, lat, err := closedLoop(ctx, *conc, *d, func(ctx context.Context) (int, error) {
		p, ok := <-queue
		if !ok {
			return 0, errStopLoop
		}
		var out csc.SignHashResponse
		err := b.postJSON(ctx, "/csc/v2/signatures/signHash", token, csc.SignHashRequest{CredentialID: cred, SAD: p.sad, Hashes: p.hashes,
			HashAlgorithmOID: "2.16.840.1.101.3.4.2.1", SignAlgo: "1.2.840.10045.4.3.2"}, &out)
		if err == nil && len(out.Signatures) != len(p.hashes) {
			err = fmt.Errorf("signHash returned %d signatures for %d hashes", len(out.Signatures), len(p.hashes))
		}
		return len(p.hashes), err
	})
	if err != nil && !errors.Is(err, errStopLoop) {
		return err
	}
	cpuNote := cpuPerOp(*pid, cpu0, rate*time.Since(t1).Seconds())
	rawAfter := raw()
	rawMean := (rawBefore + rawAfter) / 2
	fmt.Fprintf(env.stdout, "signHash: %.0f signatures/s (%d hashes per call; call p50 %s, p99 %s); raw PKCS#11 P-256 %.0f/s before, %.0f/s after; ratio %.2f%s\n",
		rate, *batch, lat.percentile(50).Round(time.Microsecond), lat.percentile(99).Round(time.Microsecond), rawBefore, rawAfter, rate/rawMean, cpuNote)
	var pdf bytes.Buffer
	if err := samplepdf.Write(&pdf, 100<<10); err != nil {
		return err
	}
	for _, lv := range []string{"B-B", "B-T"} {
		path := "/api/v1/sign?level=" + lv + "&credential=" + cred
		cpu0, t0 := serverCPUTime(*pid), time.Now()
		rate, lat, err := closedLoop(ctx, *conc, *d, func(ctx context.Context) (int, error) {
			code, body, err := b.post(ctx, path, token, "application/pdf", bytes.NewReader(pdf.Bytes()), map[string]string{signing.PINHeader: benchPIN})
			if err == nil && code != http.StatusOK {
				err = fmt.Errorf("sign %s: %d %.200s", lv, code, body)
			}
			return 1, err
		})
		if err != nil {
			return err
		}
		fmt.Fprintf(env.stdout, "sign %-4s (100 KB PDF, PIN per document) %6.0f/s  p50 %8s  p99 %8s%s\n", lv, rate, lat.percentile(50).Round(time.Microsecond),
			lat.percentile(99).Round(time.Microsecond), cpuPerOp(*pid, cpu0, rate*time.Since(t0).Seconds()))
	}
	return nil
}

// errStopLoop ends a closedLoop early without being an error.
var errStopLoop = errors.New("stop")
