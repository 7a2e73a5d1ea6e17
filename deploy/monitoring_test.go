package deploy

import (
	"bytes"
	"crypto"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"io"
	"math/big"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"syscall"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
	"gopkg.in/yaml.v3"

	"github.com/thiqa/thiqa/ca/ocsp"
	"github.com/thiqa/thiqa/internal/testenv"
)

// pendingMetrics are names the rules or the dashboard may use before the
// server exports them, each with the work that brings it. The test fails
// once such a name is exported, so the list only shrinks.
var pendingMetrics = map[string]string{}

// metricName finds the metric names in PromQL and in the dashboard: every
// series Thiqa exports starts with thiqa_, the runtime's with go_ or
// process_.
var metricName = regexp.MustCompile(`\b(?:thiqa|go|process)_[a-zA-Z0-9_]+\b`)

// routeMatcher finds route label matchers in PromQL.
var routeMatcher = regexp.MustCompile(`route\s*(=~|=)\s*"([^"]*)"`)

// TestDashboardAndRulesUseExportedMetrics starts a real server, drives
// every service the dashboard and the rules watch (issuance, a seal,
// time-stamps, OCSP, CRLs, health), scrapes /metrics and fails when the
// rules or the dashboard name a metric (histogram _bucket/_sum/_count
// included) or a route that the server does not export.
func TestDashboardAndRulesUseExportedMetrics(t *testing.T) {
	testenv.PKCS11Module(t)
	bin := thiqaBinary(t)
	dir := filepath.Join(t.TempDir(), "data")
	run(t, nil, bin, "init", "--data", dir)
	enableNotify(t, dir)
	base := startServer(t, bin, dir)
	c := &client{t: t, base: base}

	// Issuance and a seal: the CA, HSM, signing and audit series.
	officer := lastLine(run(t, nil, bin, "token", "--data", dir, "--subject", "officer-1", "--role", "registration-officer"))
	agency := lastLine(run(t, nil, bin, "token", "--data", dir, "--subject", "NTROM-1234567", "--role", "agency"))
	issue, _ := json.Marshal(map[string]any{"profile": "organisation-seal", "keyInHSM": true, "subject": map[string]string{
		"organizationName": "Ministry of Health", "organizationIdentifier": "NTROM-1234567", "commonName": "Ministry of Health Seal", "country": "OM"}})
	code, body := c.do("POST", "/api/v1/certificates", officer, "application/json", issue)
	var issued struct {
		CredentialID string `json:"credentialID"`
	}
	if code != http.StatusCreated || json.Unmarshal(body, &issued) != nil || issued.CredentialID == "" {
		t.Fatalf("issuing a seal credential: %d %s", code, body)
	}
	if code, body := c.do("POST", "/api/v1/seal?level=B-B&credential="+url.QueryEscape(issued.CredentialID), agency, "application/pdf", minimalPDF()); code != http.StatusOK {
		t.Fatalf("seal: %d %s", code, body)
	}
	// Time-stamps: one granted, one rejected (SHA-1 is refused with badAlg).
	for _, h := range []crypto.Hash{crypto.SHA256, crypto.SHA1} {
		if code, body := c.do("POST", "/tsa", "", "application/timestamp-query", tsQuery(t, h)); code != http.StatusOK {
			t.Fatalf("TSA %s: %d %s", h, code, body)
		}
	}
	// OCSP by POST and GET, CRLs, health.
	issuer := readCert(t, filepath.Join(dir, "ca", "citizen.pem"))
	req, err := ocsp.NewRequest(issuer, big.NewInt(1), crypto.SHA1, nil)
	if err != nil {
		t.Fatal(err)
	}
	if code, body := c.do("POST", "/ocsp", "", "application/ocsp-request", req); code != http.StatusOK {
		t.Fatalf("OCSP POST: %d %s", code, body)
	}
	if code, body := c.do("GET", "/ocsp/"+url.PathEscape(base64.StdEncoding.EncodeToString(req)), "", "", nil); code != http.StatusOK {
		t.Fatalf("OCSP GET: %d %s", code, body)
	}
	for path, want := range map[string]int{"/crl/citizen.crl": 200, "/healthz": 200, "/readyz": 200, "/no/such/page": 404} {
		if code, body := c.do("GET", path, "", "", nil); code != want {
			t.Fatalf("GET %s: %d %s", path, code, body)
		}
	}

	_, scrape := c.do("GET", "/metrics", "", "", nil)
	names, routes := exported(t, scrape)

	used := map[string][]string{} // metric name → where
	usedRoutes := map[string][]string{}
	rulesFile := filepath.Join(repoRoot(t), "deploy", "prometheus", "thiqa-rules.yml")
	for alert, expr := range ruleExprs(t, rulesFile) {
		collect(expr, "rule "+alert, used, usedRoutes)
	}
	dashFile := filepath.Join(repoRoot(t), "deploy", "grafana", "thiqa.json")
	for where, expr := range dashboardExprs(t, dashFile) {
		collect(expr, where, used, usedRoutes)
	}
	if len(used) < 20 {
		t.Fatalf("only %d metric names found in the rules and the dashboard: the extraction is broken", len(used))
	}
	for name, where := range used {
		switch _, pending := pendingMetrics[name]; {
		case names[name] && pending:
			t.Errorf("%s is exported now: remove it from pendingMetrics", name)
		case !names[name] && !pending:
			t.Errorf("%s (used by %s) is not exported by thiqa serve", name, strings.Join(where, ", "))
		}
	}
	for route, where := range usedRoutes {
		if !routes[route] {
			t.Errorf("route %q (used by %s) is not a route label thiqa serve exports; it has %v", route, strings.Join(where, ", "), keys(routes))
		}
	}
	// The HTTP metrics never carry a raw path.
	for route := range routes {
		if strings.Contains(route, issued.CredentialID) || strings.Contains(route, "no/such") {
			t.Errorf("route label %q carries a path", route)
		}
	}
}

// enableNotify turns the notifications to citizens on, to a gateway on
// loopback, so that their series are exported.
func enableNotify(t *testing.T, dir string) {
	t.Helper()
	gw := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(http.StatusNoContent) }))
	t.Cleanup(gw.Close)
	if err := os.WriteFile(filepath.Join(dir, "notify.secret"), []byte("monitoring-test-webhook-secret\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	f, err := os.OpenFile(filepath.Join(dir, "thiqa.yaml"), os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := fmt.Fprintf(f, "notify:\n  enabled: true\n  webhook:\n    url: %s/notify\n    secretFile: notify.secret\n", gw.URL); err != nil {
		t.Fatal(err)
	}
}

// client sends requests to a running server.
type client struct {
	t    *testing.T
	base string
}

func (c *client) do(method, path, token, ctype string, body []byte) (int, []byte) {
	c.t.Helper()
	req, err := http.NewRequest(method, c.base+path, bytes.NewReader(body))
	if err != nil {
		c.t.Fatal(err)
	}
	if ctype != "" {
		req.Header.Set("Content-Type", ctype)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		c.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, b
}

// startServer runs `thiqa serve` on a free loopback port until the test ends.
func startServer(t *testing.T, bin, dir string) string {
	t.Helper()
	ready := filepath.Join(t.TempDir(), "ready")
	cmd := exec.Command(bin, "serve", "--data", dir, "--addr", "127.0.0.1:0", "--ready-file", ready)
	var errb bytes.Buffer
	cmd.Stderr = &errb
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		done := make(chan struct{})
		go func() { _ = cmd.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(40 * time.Second):
			_ = cmd.Process.Kill()
			<-done
		}
	})
	return waitReady(t, ready, &errb)
}

// exported returns the sample names of a scrape (a histogram family F
// gives F_bucket, F_sum and F_count) and the values of its route labels.
func exported(t *testing.T, scrape []byte) (names, routes map[string]bool) {
	t.Helper()
	p := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := p.TextToMetricFamilies(bytes.NewReader(scrape))
	if err != nil {
		t.Fatalf("parsing /metrics: %v", err)
	}
	names, routes = map[string]bool{}, map[string]bool{}
	for name, f := range fams {
		switch f.GetType() {
		case dto.MetricType_HISTOGRAM, dto.MetricType_GAUGE_HISTOGRAM:
			names[name+"_bucket"], names[name+"_sum"], names[name+"_count"] = true, true, true
		case dto.MetricType_SUMMARY:
			names[name], names[name+"_sum"], names[name+"_count"] = true, true, true
		default:
			names[name] = true
		}
		for _, m := range f.GetMetric() {
			for _, l := range m.GetLabel() {
				if l.GetName() == "route" {
					routes[l.GetValue()] = true
				}
			}
		}
	}
	return names, routes
}

// collect records the metric names and route matchers of one expression.
func collect(expr, where string, used, usedRoutes map[string][]string) {
	for _, n := range metricName.FindAllString(expr, -1) {
		used[n] = append(used[n], where)
	}
	for _, m := range routeMatcher.FindAllStringSubmatch(expr, -1) {
		alternatives := []string{m[2]}
		if m[1] == "=~" {
			alternatives = strings.Split(m[2], "|")
		}
		for _, r := range alternatives {
			usedRoutes[r] = append(usedRoutes[r], where)
		}
	}
}

// ruleExprs returns the expression of every rule, by alert name.
func ruleExprs(t *testing.T, path string) map[string]string {
	t.Helper()
	var f struct {
		Groups []struct {
			Rules []struct {
				Alert string `yaml:"alert"`
				Expr  string `yaml:"expr"`
			} `yaml:"rules"`
		} `yaml:"groups"`
	}
	if err := yaml.Unmarshal([]byte(mustRead(t, path)), &f); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	out := map[string]string{}
	for _, g := range f.Groups {
		for _, r := range g.Rules {
			if r.Alert == "" || r.Expr == "" {
				t.Fatalf("%s: a rule without alert name or expression", path)
			}
			out[r.Alert] = r.Expr
		}
	}
	return out
}

// dashboardExprs checks the dashboard's shape (unique panel ids, every
// query with a refId, the datasource variable) and returns every query,
// by panel title and refId, with the template variables' queries.
func dashboardExprs(t *testing.T, path string) map[string]string {
	t.Helper()
	var d struct {
		UID        string `json:"uid"`
		Templating struct {
			List []struct {
				Name       string `json:"name"`
				Definition string `json:"definition"`
			} `json:"list"`
		} `json:"templating"`
		Panels []struct {
			ID      int    `json:"id"`
			Type    string `json:"type"`
			Title   string `json:"title"`
			Targets []struct {
				RefID string `json:"refId"`
				Expr  string `json:"expr"`
			} `json:"targets"`
		} `json:"panels"`
	}
	if err := json.Unmarshal([]byte(mustRead(t, path)), &d); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	out := map[string]string{}
	vars := map[string]bool{}
	for _, v := range d.Templating.List {
		vars[v.Name] = true
		if v.Definition != "" {
			out["variable "+v.Name] = v.Definition
		}
	}
	if d.UID == "" || !vars["datasource"] || !vars["instance"] {
		t.Fatalf("%s: want a uid and the datasource and instance variables", path)
	}
	ids := map[int]bool{}
	for _, p := range d.Panels {
		if ids[p.ID] {
			t.Errorf("%s: panel id %d twice", path, p.ID)
		}
		ids[p.ID] = true
		if p.Type == "row" {
			continue
		}
		if len(p.Targets) == 0 {
			t.Errorf("%s: panel %q has no query", path, p.Title)
		}
		for _, q := range p.Targets {
			if q.RefID == "" || q.Expr == "" {
				t.Errorf("%s: panel %q has a query without refId or expr", path, p.Title)
			}
			out[fmt.Sprintf("panel %q %s", p.Title, q.RefID)] = q.Expr
		}
	}
	return out
}

// tsQuery returns a DER RFC 3161 TimeStampReq for a digest made with h.
func tsQuery(t *testing.T, h crypto.Hash) []byte {
	t.Helper()
	oids := map[crypto.Hash]asn1.ObjectIdentifier{
		crypto.SHA1:   {1, 3, 14, 3, 2, 26},
		crypto.SHA256: {2, 16, 840, 1, 101, 3, 4, 2, 1},
	}
	type messageImprint struct {
		HashAlgorithm pkix.AlgorithmIdentifier
		HashedMessage []byte
	}
	type request struct {
		Version        int
		MessageImprint messageImprint
		CertReq        bool
	}
	d := h.New()
	d.Write([]byte("Thiqa monitoring test"))
	der, err := asn1.Marshal(request{Version: 1, CertReq: true, MessageImprint: messageImprint{
		HashAlgorithm: pkix.AlgorithmIdentifier{Algorithm: oids[h], Parameters: asn1.NullRawValue},
		HashedMessage: d.Sum(nil),
	}})
	if err != nil {
		t.Fatal(err)
	}
	return der
}

// minimalPDF returns a one-page PDF with a correct cross-reference table.
func minimalPDF() []byte {
	var b bytes.Buffer
	b.WriteString("%PDF-1.7\n%\xe2\xe3\xcf\xd3\n")
	objects := []string{
		"<</Type /Catalog /Pages 2 0 R>>",
		"<</Type /Pages /Kids [3 0 R] /Count 1>>",
		"<</Type /Page /Parent 2 0 R /MediaBox [0 0 595 842]>>",
	}
	offsets := make([]int, len(objects))
	for i, o := range objects {
		offsets[i] = b.Len()
		fmt.Fprintf(&b, "%d 0 obj\n%s\nendobj\n", i+1, o)
	}
	xref := b.Len()
	fmt.Fprintf(&b, "xref\n0 %d\n0000000000 65535 f\r\n", len(objects)+1)
	for _, o := range offsets {
		fmt.Fprintf(&b, "%010d 00000 n\r\n", o)
	}
	fmt.Fprintf(&b, "trailer\n<</Size %d /Root 1 0 R>>\nstartxref\n%d\n%%%%EOF\n", len(objects)+1, xref)
	return b.Bytes()
}

// readCert reads a PEM certificate.
func readCert(t *testing.T, path string) *x509.Certificate {
	t.Helper()
	blk, _ := pem.Decode([]byte(mustRead(t, path)))
	if blk == nil {
		t.Fatalf("%s: no PEM", path)
	}
	c, err := x509.ParseCertificate(blk.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// mustRead returns a file's content.
func mustRead(t testing.TB, path string) string {
	t.Helper()
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(raw)
}

// keys returns a map's keys, sorted.
func keys(m map[string]bool) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}
