package bench

import (
	"bytes"
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"net/http"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/thiqa/thiqa/ca"
	"github.com/thiqa/thiqa/internal/samplepdf"
	"github.com/thiqa/thiqa/policies"
	"github.com/thiqa/thiqa/timestamp"
	"github.com/thiqa/thiqa/timestamp/tsp"
)

// clusterOp is one request of the cluster load and what its answer says.
type clusterOp struct {
	kind   string // tsa, seal, issue
	start  time.Time
	end    time.Time
	err    string // empty when the client received a good answer
	serial string // tsa: token serial (decimal); issue: certificate serial (hex)
	digest string // seal: hex SHA-256 of the sealed PDF's ByteRange
}

// clusterLoad drives TSA, seal and issuance load at a cluster's load
// balancer and keeps every answer for the checks.
type clusterLoad struct {
	url     string
	client  *http.Client
	officer string
	agency  string
	cred    string
	level   string
	country string // of the subjects it has issued
	pdf     []byte
	tsaReqs [][]byte
	next    atomic.Uint64

	mu  sync.Mutex
	ops []clusterOp
}

// Cluster is `thiqa bench cluster`: closed-loop load through a load
// balancer for a while (scripts/cluster.sh kills and restarts a node
// meanwhile), then the checks of a failover: few failures, no serial
// handed out twice, every answer a client received in the audit log.
func Cluster(ctx context.Context, deps Deps, args []string, stdout, stderr io.Writer) error {
	env := &env{deps: deps, stdout: stdout, stderr: stderr}
	fs := newFlags("bench cluster", env)
	dir := fs.String("data", "", "the cluster's data folder (required: tokens are minted with its token, the store is checked)")
	dur := fs.Duration("duration", 30*time.Second, "how long the load runs")
	nTSA := fs.Int("tsa", 3, "TSA workers")
	nSeal := fs.Int("seal", 1, "seal workers")
	nIssue := fs.Int("issue", 1, "issuance workers")
	level := fs.String("level", "B-T", "seal level")
	maxFail := fs.Int("max-failures", -1, "failures allowed (default: the number of workers, the most that can be in flight at one node)")
	window := fs.Duration("failure-window", 5*time.Second, "the failures must all fall within this span (a node's in-flight requests fail together)")
	country := countryFlag(fs)
	var url string
	if len(args) > 0 && !strings.HasPrefix(args[0], "-") {
		url, args = args[0], args[1:]
	}
	if err := fs.Parse(args); err != nil {
		return parseError(err)
	}
	if url == "" || *dir == "" {
		return usage(errors.New("usage: thiqa bench cluster URL --data DIR [--duration D] [--tsa N] [--seal N] [--issue N]"))
	}
	folder, err := deps.Folder(*dir)
	if err != nil {
		return err
	}
	cc, err := subjectCountry(folder, *country)
	if err != nil {
		return err
	}
	tok, err := folder.OpenToken(ctx, 0)
	if err != nil {
		return err
	}
	defer tok.Close()
	st, err := folder.OpenStore(ctx)
	if err != nil {
		return err
	}
	defer st.Close()
	workers := *nTSA + *nSeal + *nIssue
	if *maxFail < 0 {
		*maxFail = workers
	}
	l := &clusterLoad{url: strings.TrimRight(url, "/"), level: *level, country: cc,
		client: &http.Client{Timeout: time.Minute, Transport: &http.Transport{MaxIdleConnsPerHost: 64, IdleConnTimeout: time.Minute}}}
	if l.officer, err = tok.MintToken(ctx, "cluster-officer", policies.RoleRegistrationOfficer, 2*time.Hour); err != nil {
		return err
	}
	org := orgIdentifier(cc, 7000000+int(time.Now().Unix()%1000000))
	if l.agency, err = tok.MintToken(ctx, org, policies.RoleAgency, 2*time.Hour); err != nil {
		return err
	}
	if l.cred, err = l.sealCredential(ctx, org); err != nil {
		return fmt.Errorf("making the seal credential through %s: %w", l.url, err)
	}
	var pdf bytes.Buffer
	if err := samplepdf.Write(&pdf, 20<<10); err != nil {
		return err
	}
	l.pdf = pdf.Bytes()
	if l.tsaReqs, err = prepareTSARequests(256); err != nil {
		return err
	}

	fmt.Fprintf(stdout, "cluster load: %s for %s: %d TSA, %d seal (%s), %d issuance workers\n", l.url, *dur, *nTSA, *nSeal, *level, *nIssue)
	start := time.Now()
	l.run(ctx, *dur, map[string]int{"tsa": *nTSA, "seal": *nSeal, "issue": *nIssue})
	elapsed := time.Since(start)
	sum := l.summary(elapsed)
	fmt.Fprint(stdout, sum.String())

	problems := l.checkAnswers(sum, *maxFail, *window)
	storeProblems, err := l.checkStore(ctx, st, stdout)
	if err != nil {
		return err
	}
	problems = append(problems, storeProblems...)
	if len(problems) > 0 {
		for _, pr := range problems {
			fmt.Fprintf(stdout, "FAIL: %s\n", pr)
		}
		return fmt.Errorf("the failover checks failed (%d problems)", len(problems))
	}
	fmt.Fprintf(stdout, "failover checks OK: %d requests, %d failed (at most %d allowed); no serial handed out twice; every answer is in the audit log\n",
		sum.total, sum.failed, *maxFail)
	return nil
}

// sealCredential makes an organisation-seal key on the token for org.
func (l *clusterLoad) sealCredential(ctx context.Context, org string) (string, error) {
	body, _ := json.Marshal(ca.IssueRequest{Profile: policies.ProfileOrganisationSeal, KeyInHSM: true, Subject: map[string]string{
		"organizationName": "Cluster Test Agency", "organizationIdentifier": org, "commonName": "Cluster Test Seal", "country": l.country}})
	code, raw, err := l.post(ctx, "/api/v1/certificates", l.officer, "application/json", body)
	if err != nil {
		return "", err
	}
	var out ca.IssueResponse
	if code != http.StatusCreated || json.Unmarshal(raw, &out) != nil || out.CredentialID == "" {
		return "", fmt.Errorf("%d %.300s", code, raw)
	}
	return out.CredentialID, nil
}

// post sends one request and reads the whole answer.
func (l *clusterLoad) post(ctx context.Context, path, token, ctype string, body []byte) (int, []byte, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, l.url+path, bytes.NewReader(body))
	if err != nil {
		return 0, nil, err
	}
	req.Header.Set("Content-Type", ctype)
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := l.client.Do(req)
	if err != nil {
		return 0, nil, err
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(io.LimitReader(resp.Body, 64<<20))
	return resp.StatusCode, raw, err
}

// run runs the workers of each kind back to back for d.
func (l *clusterLoad) run(ctx context.Context, d time.Duration, workers map[string]int) {
	ctx, cancel := context.WithTimeout(ctx, d)
	defer cancel()
	var wg sync.WaitGroup
	for kind, n := range workers {
		op := map[string]func(context.Context) clusterOp{"tsa": l.oneTSA, "seal": l.oneSeal, "issue": l.oneIssue}[kind]
		for range n {
			wg.Go(func() {
				for ctx.Err() == nil {
					o := op(context.WithoutCancel(ctx)) // a request in flight at the end is finished, not cut
					o.kind = kind
					l.mu.Lock()
					l.ops = append(l.ops, o)
					l.mu.Unlock()
					if o.err != "" {
						pause(ctx, failurePause)
					}
				}
			})
		}
	}
	wg.Wait()
}

// failurePause is how long a worker waits after a failed request before
// its next one, as a real client backs off. Without it a worker whose
// request died with a node sends the next one at once, and the balancer,
// which has not yet seen the node go, may hand it to the node while the
// kernel is still tearing the process down: it is accepted into the
// dying listener's backlog and reset. That failure is the kill's, not a
// lost request, but it would count twice against one worker. The pause
// outlasts the teardown and the balancer's health checks (500 ms).
const failurePause = time.Second

// pause waits d, or until ctx ends.
func pause(ctx context.Context, d time.Duration) {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
	case <-t.C:
	}
}

// failed fills in a failed operation.
func failed(o clusterOp, format string, args ...any) clusterOp {
	o.end, o.err = time.Now(), fmt.Sprintf(format, args...)
	return o
}

// oneTSA asks for one time-stamp token and reads its serial.
func (l *clusterLoad) oneTSA(ctx context.Context) clusterOp {
	o := clusterOp{start: time.Now()}
	code, raw, err := l.post(ctx, "/tsa", "", timestamp.QueryContentType, l.tsaReqs[l.next.Add(1)%uint64(len(l.tsaReqs))])
	if err != nil {
		return failed(o, "%v", err)
	}
	if code != http.StatusOK {
		return failed(o, "HTTP %d %.200s", code, raw)
	}
	resp, err := tsp.ParseResponse(raw)
	if err != nil || resp.Status.Status != tsp.StatusGranted {
		return failed(o, "not granted: %v %v", err, resp)
	}
	tok, err := tsp.ParseToken(resp.Token)
	if err != nil {
		return failed(o, "token: %v", err)
	}
	o.end, o.serial = time.Now(), tok.Info.SerialNumber.String()
	return o
}

// oneIssue issues one citizen-signing certificate for a fresh key.
func (l *clusterLoad) oneIssue(ctx context.Context) clusterOp {
	o := clusterOp{start: time.Now()}
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return failed(o, "%v", err)
	}
	der, err := x509.CreateCertificateRequest(rand.Reader, &x509.CertificateRequest{}, k)
	if err != nil {
		return failed(o, "%v", err)
	}
	civil := strconv.Itoa(50000000 + int(l.next.Add(1)%40000000))
	body, _ := json.Marshal(ca.IssueRequest{Profile: policies.ProfileCitizenSigning,
		CSR:     string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE REQUEST", Bytes: der})),
		Subject: map[string]string{"givenName": "Cluster", "surname": "Citizen", "commonName": "Cluster Citizen " + civil, "civilNumber": civil, "country": l.country}})
	code, raw, err := l.post(ctx, "/api/v1/certificates", l.officer, "application/json", body)
	if err != nil {
		return failed(o, "%v", err)
	}
	var out ca.IssueResponse
	if code != http.StatusCreated || json.Unmarshal(raw, &out) != nil || out.Serial == "" {
		return failed(o, "HTTP %d %.200s", code, raw)
	}
	o.end, o.serial = time.Now(), out.Serial
	return o
}

// byteRange finds the last signature's /ByteRange in a PDF.
var byteRange = regexp.MustCompile(`/ByteRange\s*\[\s*(\d+)\s+(\d+)\s+(\d+)\s+(\d+)\s*\]`)

// sealDigest returns the hex SHA-256 over the last signature's ByteRange.
func sealDigest(pdf []byte) (string, error) {
	all := byteRange.FindAllSubmatch(pdf, -1)
	if len(all) == 0 {
		return "", errors.New("no /ByteRange")
	}
	m := all[len(all)-1]
	var n [4]int
	for i := range n {
		v, err := strconv.Atoi(string(m[i+1]))
		if err != nil {
			return "", err
		}
		n[i] = v
	}
	if n[0] != 0 || n[1] < 0 || n[2] < n[1] || n[3] < 0 || n[2]+n[3] != len(pdf) {
		return "", fmt.Errorf("/ByteRange %v does not cover the file of %d bytes", n, len(pdf))
	}
	h := crypto.SHA256.New()
	h.Write(pdf[:n[1]])
	h.Write(pdf[n[2] : n[2]+n[3]])
	return hex.EncodeToString(h.Sum(nil)), nil
}

// oneSeal seals the sample PDF and computes the sealed PDF's digest.
func (l *clusterLoad) oneSeal(ctx context.Context) clusterOp {
	o := clusterOp{start: time.Now()}
	code, raw, err := l.post(ctx, "/api/v1/seal?level="+l.level+"&credential="+l.cred, l.agency, "application/pdf", l.pdf)
	if err != nil {
		return failed(o, "%v", err)
	}
	if code != http.StatusOK || !bytes.HasPrefix(raw, l.pdf[:8]) {
		return failed(o, "HTTP %d %.200s", code, raw)
	}
	d, err := sealDigest(raw)
	if err != nil {
		return failed(o, "sealed PDF: %v", err)
	}
	o.end, o.digest = time.Now(), d
	return o
}

// clusterSummary counts the load's outcomes.
type clusterSummary struct {
	elapsed        time.Duration
	total, failed  int
	byKind, failBy map[string]int
	firstFail      time.Time
	lastFail       time.Time
	examples       []string
}

// summary counts the operations.
func (l *clusterLoad) summary(elapsed time.Duration) clusterSummary {
	s := clusterSummary{elapsed: elapsed, byKind: map[string]int{}, failBy: map[string]int{}}
	for _, o := range l.ops {
		s.total++
		s.byKind[o.kind]++
		if o.err == "" {
			continue
		}
		s.failed++
		s.failBy[o.kind]++
		if s.firstFail.IsZero() || o.end.Before(s.firstFail) {
			s.firstFail = o.end
		}
		if o.end.After(s.lastFail) {
			s.lastFail = o.end
		}
		if len(s.examples) < 5 {
			s.examples = append(s.examples, o.kind+": "+oneLine(o.err))
		}
	}
	return s
}

// String reports the counts, one line per kind.
func (s clusterSummary) String() string {
	var b strings.Builder
	fmt.Fprintf(&b, "requests      %d in %s (%.0f/s), %d failed\n", s.total, s.elapsed.Round(time.Millisecond), float64(s.total)/s.elapsed.Seconds(), s.failed)
	for _, k := range []string{"tsa", "seal", "issue"} {
		fmt.Fprintf(&b, "  %-6s      %d, %d failed\n", k, s.byKind[k], s.failBy[k])
	}
	if s.failed > 0 {
		fmt.Fprintf(&b, "failures      within %s (%s to %s)\n", s.lastFail.Sub(s.firstFail).Round(time.Millisecond),
			s.firstFail.Format("15:04:05.000"), s.lastFail.Format("15:04:05.000"))
		for _, e := range s.examples {
			fmt.Fprintf(&b, "  e.g.        %s\n", e)
		}
	}
	return b.String()
}
