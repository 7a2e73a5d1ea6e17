package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/thiqa/thiqa/ca"
	"github.com/thiqa/thiqa/cmd/thiqa/internal/config"
	"github.com/thiqa/thiqa/internal/testenv"
	"github.com/thiqa/thiqa/verify"
	"github.com/thiqa/thiqa/verify/report"
)

// vfyPlainPDF is a one-page PDF (objects 1 catalog, 2 pages, 3 font, 4
// page, 5 content) to seal.
func vfyPlainPDF() []byte {
	var b bytes.Buffer
	var offs []int
	b.WriteString("%PDF-1.7\n%\xe2\xe3\xcf\xd3\n")
	text := "BT /F1 18 Tf 72 760 Td (Thiqa verification sample) Tj ET\n" + strings.Repeat("% padding line for a document of realistic size\n", 400)
	for i, body := range []string{
		"<</Type /Catalog /Pages 2 0 R>>",
		"<</Type /Pages /Kids [4 0 R] /Count 1>>",
		"<</Type /Font /Subtype /Type1 /BaseFont /Helvetica>>",
		"<</Type /Page /Parent 2 0 R /MediaBox [0 0 595 842] /Resources <</Font <</F1 3 0 R>>>> /Contents 5 0 R>>",
		fmt.Sprintf("<</Length %d>>\nstream\n%s\nendstream", len(text)+1, text),
	} {
		offs = append(offs, b.Len())
		fmt.Fprintf(&b, "%d 0 obj\n%s\nendobj\n", i+1, body)
	}
	xref := b.Len()
	fmt.Fprintf(&b, "xref\n0 %d\n0000000000 65535 f\r\n", len(offs)+1)
	for _, o := range offs {
		fmt.Fprintf(&b, "%010d 00000 n\r\n", o)
	}
	fmt.Fprintf(&b, "trailer\n<</Size %d /Root 1 0 R>>\nstartxref\n%d\n%%%%EOF\n", len(offs)+1, xref)
	return b.Bytes()
}

// vfyAppendPage adds a page to a (signed) PDF in an incremental update:
// a new page object and a new version of the page tree (object 2).
func vfyAppendPage(t *testing.T, pdf []byte) []byte {
	t.Helper()
	last := func(re string) string {
		m := regexp.MustCompile(re).FindAllSubmatch(pdf, -1)
		if len(m) == 0 {
			t.Fatalf("appending a page: no %s", re)
		}
		return string(m[len(m)-1][1])
	}
	prev, root := last(`startxref\s+(\d+)`), last(`/Root\s+(\d+)\s+0\s+R`)
	n, _ := strconv.Atoi(last(`/Size\s+(\d+)`))
	var b bytes.Buffer
	b.Write(pdf)
	if !bytes.HasSuffix(pdf, []byte("\n")) {
		b.WriteByte('\n')
	}
	content := "BT /F1 18 Tf 72 700 Td (A page added after signing) Tj ET"
	o1 := b.Len()
	fmt.Fprintf(&b, "%d 0 obj\n<</Type /Page /Parent 2 0 R /MediaBox [0 0 595 842] /Contents %d 0 R>>\nendobj\n", n, n+1)
	o2 := b.Len()
	fmt.Fprintf(&b, "%d 0 obj\n<</Length %d>>\nstream\n%s\nendstream\nendobj\n", n+1, len(content), content)
	o3 := b.Len()
	fmt.Fprintf(&b, "2 0 obj\n<</Type /Pages /Kids [4 0 R %d 0 R] /Count 2>>\nendobj\n", n)
	xref := b.Len()
	fmt.Fprintf(&b, "xref\n2 1\n%010d 00000 n\r\n%d 2\n%010d 00000 n\r\n%010d 00000 n\r\n", o3, n, o1, o2)
	fmt.Fprintf(&b, "trailer\n<</Size %d /Root %s 0 R /Prev %s>>\nstartxref\n%d\n%%%%EOF\n", n+2, root, prev, xref)
	return b.Bytes()
}

func vfyFreePort(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return strconv.Itoa(ln.Addr().(*net.TCPAddr).Port)
}

// vfyServe runs `thiqa serve` on port, the port of its publicBaseURL, so
// that online OCSP requests reach its responder.
func vfyServe(t *testing.T, dir, port string) *server {
	t.Helper()
	ready := filepath.Join(t.TempDir(), "ready")
	cmd := exec.Command(thiqaBin, "serve", "--data", dir, "--addr", "127.0.0.1:"+port, "--ready-file", ready)
	var errb testenv.SyncBuffer
	cmd.Stderr = &errb
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if cmd.ProcessState == nil {
			_ = cmd.Process.Kill()
			_ = cmd.Wait()
		}
		noDataRace(t, errb.String())
	})
	for deadline := time.Now().Add(30 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		if _, err := os.Stat(ready); err == nil {
			return &server{cmd: cmd, stderr: &errb, base: "http://127.0.0.1:" + port}
		}
	}
	t.Fatalf("thiqa serve did not become ready:\n%s", errb.String())
	return nil
}

// vfySend posts body to the server.
func vfySend(t *testing.T, srv *server, path, token, ctype string, body []byte) (int, http.Header, []byte) {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, srv.base+path, bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", ctype)
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, resp.Header, b
}

// vfyReport runs `thiqa verify --json` and decodes the report.
func vfyReport(t *testing.T, wantCode int, args ...string) *report.Report {
	t.Helper()
	r := thiqa(t, nil, append([]string{"verify", "--json"}, args...)...)
	var rep report.Report
	if err := json.Unmarshal([]byte(r.stdout), &rep); err != nil || r.code != wantCode {
		t.Fatalf("thiqa verify %v: exit %d (want %d), %v\nstdout: %.20000s\nstderr: %s", args, r.code, wantCode, err, r.stdout, r.stderr)
	}
	return &rep
}

// signatureOf returns the report's (first) signature, not a document timestamp.
func signatureOf(t *testing.T, rep *report.Report) report.Signature {
	t.Helper()
	for _, s := range rep.Signatures {
		if s.Kind == "signature" {
			return s
		}
	}
	t.Fatalf("no signature in the report: %+v", rep)
	return report.Signature{}
}

// TestVerifyEndToEnd seals a PDF at every level through the running server
// (organisation-seal key on the token), then verifies each through the
// binary, the API and the page in headless Chromium: sealed documents pass
// at their level; a one-byte change and an appended page fail them.
func TestVerifyEndToEnd(t *testing.T) {
	port := vfyFreePort(t)
	dir := filepath.Join(t.TempDir(), "data")
	work := t.TempDir()
	conf := editedConfig(t, dir, func(y string) string {
		y = strings.ReplaceAll(y, "127.0.0.1:8080", "127.0.0.1:"+port)
		const def = "verify:\n  maxUploadBytes: 67108864\n  ratePerSecond: 5\n  burst: 20\n"
		if !strings.Contains(y, def) {
			t.Fatalf("no default verify section in the configuration:\n%s", y)
		}
		return strings.Replace(y, def, "verify:\n  maxUploadBytes: 1048576\n  ratePerSecond: 20\n  burst: 20\n  trustedProxies: [127.0.0.1/32]\n", 1)
	})
	mustThiqa(t, nil, "init", "--data", dir, "--config", conf)
	srv := vfyServe(t, dir, port)
	officer := lastLine(mustThiqa(t, nil, "token", "--data", dir, "--subject", "officer-7", "--role", "registration-officer").stdout)
	agency := lastLine(mustThiqa(t, nil, "token", "--data", dir, "--subject", "NTROM-1234567", "--role", "agency").stdout)
	cred := issueOK(t, srv, officer, ca.IssueRequest{Profile: "organisation-seal", Subject: orgSubject(), KeyInHSM: true}).CredentialID
	root := filepath.Join(dir, "ca", "root.pem")

	plain := vfyPlainPDF()
	sealed := map[string]string{}
	for _, lv := range []string{"B-B", "B-T", "B-LT", "B-LTA"} {
		code, _, body := vfySend(t, srv, "/api/v1/seal?level="+lv+"&credential="+cred, agency, "application/pdf", plain)
		if code != http.StatusOK || !bytes.HasPrefix(body, []byte("%PDF")) {
			t.Fatalf("sealing at %s: %d %.300s", lv, code, body)
		}
		p := filepath.Join(work, "sealed-"+lv+".pdf")
		writeFile(t, p, string(body))
		sealed[lv] = p
	}

	// Bodies that are not PDFs: the same verdict on every path.
	writeFile(t, filepath.Join(work, "not-a-pdf.pdf"), "<!DOCTYPE html><html><body>not a PDF</body></html>\n")
	writeFile(t, filepath.Join(work, "empty.pdf"), "")
	writeFile(t, filepath.Join(work, "multipart-as-is.pdf"), "--xyz\r\nContent-Disposition: form-data; name=\"file\"; filename=\"a.pdf\"\r\n\r\n"+
		strings.Repeat("%", 1100)+mustRead(t, sealed["B-T"])+"\r\n--xyz--\r\n")

	t.Run("cli", func(t *testing.T) {
		for lv, p := range sealed {
			rep := vfyReport(t, 0, p, "--data", dir)
			s := signatureOf(t, rep)
			if rep.Indication != report.TotalPassed || s.Level != lv || s.Signer == nil || s.Signer.OrganizationIdentifier != "NTROM-1234567" ||
				strings.Join(s.Signer.QCTypes, ",") != "eseal" {
				t.Fatalf("%s: %s, level %q, signer %+v", lv, rep.Indication, s.Level, s.Signer)
			}
			// Without a trusted list the certificate's QC statements prove nothing (TestTSLEndToEnd has the list).
			if q := s.Signer.Qualification; s.Signer.Qualified || s.Signer.QSCD || q.Status != report.QualificationUnknown || !q.Certificate.QcCompliance || !q.Certificate.QcSSCD {
				t.Fatalf("%s: qualified without a trusted list: %+v %+v", lv, s.Signer, q)
			}
			doc := []byte(mustRead(t, p))
			i := bytes.Index(doc, []byte("Thiqa verification sample"))
			changed := bytes.Clone(doc)
			changed[i] ^= 0x01
			one := filepath.Join(work, "one-byte-"+lv+".pdf")
			writeFile(t, one, string(changed))
			if rep := vfyReport(t, 1, one, "--trust", root); rep.Indication != report.TotalFailed || signatureOf(t, rep).SubIndication != report.HashFailure {
				t.Fatalf("%s with one byte changed: %s %s", lv, rep.Indication, rep.SubIndication)
			}
			page := filepath.Join(work, "page-"+lv+".pdf")
			writeFile(t, page, string(vfyAppendPage(t, doc)))
			if out, err := exec.Command(testenv.Tool(t, "qpdf"), "--show-npages", page).Output(); err != nil || strings.TrimSpace(string(out)) != "2" {
				t.Fatalf("%s: the appended page is not a page: %v %s", lv, err, out)
			}
			if rep := vfyReport(t, 1, page, "--trust", root); rep.Indication != report.TotalFailed || signatureOf(t, rep).SubIndication != report.FormatFailure {
				t.Fatalf("%s with a page appended: %s %s", lv, rep.Indication, rep.SubIndication)
			}
		}
		// The human-readable report; flags after the file.
		r := mustThiqa(t, nil, "verify", sealed["B-LT"], "--trust", root)
		for _, want := range []string{"Verdict: TOTAL-PASSED", "level: B-LT", "NTROM-1234567"} {
			if !strings.Contains(r.stdout, want) {
				t.Fatalf("text report lacks %q:\n%s", want, r.stdout)
			}
		}
		// Without online revocation, B-B has no revocation data: INDETERMINATE.
		if rep := vfyReport(t, 2, sealed["B-B"], "--trust", root, "--offline"); signatureOf(t, rep).SubIndication != report.TryLater {
			t.Fatalf("offline B-B: %s %s", rep.Indication, signatureOf(t, rep).SubIndication)
		}
		// Before the certificates existed: INDETERMINATE.
		vfyReport(t, 2, sealed["B-LT"], "--trust", root, "--at", "2020-01-01T00:00:00Z")
		// Untrusted: another deployment's root.
		other := filepath.Join(t.TempDir(), "other")
		mustThiqa(t, nil, "init", "--data", other)
		if rep := vfyReport(t, 2, sealed["B-LT"], "--data", other); signatureOf(t, rep).SubIndication != report.NoCertificateChainFound {
			t.Fatalf("foreign root: %s", signatureOf(t, rep).SubIndication)
		}
		// ... until the other deployment lists this one's root in verify.trustAnchorFiles.
		y := mustRead(t, config.Path(other))
		writeFile(t, config.Path(other), strings.Replace(y, "verify:\n", "verify:\n  trustAnchorFiles: ["+root+"]\n", 1))
		if rep := vfyReport(t, 0, sealed["B-LT"], "--data", other); signatureOf(t, rep).Level != "B-LT" {
			t.Fatalf("root as an extra anchor: %+v", signatureOf(t, rep))
		}
		// No trust anchor at all: still a verdict, and a warning that says why.
		for name, want := range map[string]report.SubIndication{
			"sealed-B-LT.pdf":     report.NoCertificateChainFound,
			"one-byte-B-LT.pdf":   report.HashFailure,
			"page-B-LT.pdf":       report.FormatFailure,
			"not-a-pdf.pdf":       report.FormatFailure,
			"empty.pdf":           report.FormatFailure,
			"multipart-as-is.pdf": report.FormatFailure,
		} {
			code := 1
			if want == report.NoCertificateChainFound {
				code = 2
			}
			r := thiqa(t, nil, "verify", "--json", filepath.Join(work, name))
			var rep report.Report
			if err := json.Unmarshal([]byte(r.stdout), &rep); err != nil || r.code != code || rep.SubIndication != want ||
				!slices.Contains(rep.Warnings, verify.NoAnchorWarning) || !strings.Contains(r.stderr, "no trust anchor configured") {
				t.Fatalf("%s without an anchor: exit %d (want %d), %s (want %s), %v\nstdout: %.20000s\nstderr: %s", name, r.code, code, rep.SubIndication, want, err, r.stdout, r.stderr)
			}
		}
		for _, c := range []struct {
			args []string
			want string
		}{
			{[]string{filepath.Join(work, "missing.pdf"), "--trust", root}, "no such file"},
			{[]string{filepath.Join(work, "missing.pdf")}, "no such file"},
			{[]string{work}, "not a regular file"},
			{[]string{sealed["B-B"], "--trust", root, "--at", "yesterday"}, "--at"},
			{[]string{sealed["B-B"], "--trust", filepath.Join(work, "sealed-B-B.pdf")}, "no CERTIFICATE"},
			{[]string{sealed["B-B"], sealed["B-T"], "--trust", root}, "one file at a time"},
			{[]string{"--trust", root}, "name the PDF"},
			{[]string{sealed["B-B"], "--no-such-flag"}, "not defined"},
		} {
			r := thiqa(t, nil, append([]string{"verify"}, c.args...)...)
			if r.code != 3 || !strings.Contains(r.stderr, c.want) {
				t.Fatalf("verify %v: exit %d, stderr %q; want 3 naming %q", c.args, r.code, r.stderr, c.want)
			}
		}
	})

	t.Run("bench", func(t *testing.T) {
		// The benchmark's modes run and report what they measured.
		r := mustThiqa(t, nil, "bench", "verify", "--in", sealed["B-LT"], "--trust", root, "--duration", "200ms", "--compare", "pdfsign", "--rounds", "1")
		for _, want := range []string{"thiqa (full checks)", "pdfsign verify (defaults)", "pdfsign verify (embedded roots)", "TOTAL-PASSED B-LT", "ratio         thiqa / pdfsign"} {
			if !strings.Contains(r.stdout, want) {
				t.Fatalf("bench verify --compare pdfsign lacks %q:\n%s", want, r.stdout)
			}
		}
		if r := mustThiqa(t, nil, "bench", "verify", "--in", sealed["B-LT"], "--trust", root, "--once"); !strings.Contains(r.stdout, "peak memory") {
			t.Fatalf("bench verify --once:\n%s", r.stdout)
		}
		if r := thiqa(t, nil, "bench", "verify", "--in", sealed["B-LT"], "--trust", root, "--compare", "nothing"); r.code != 2 {
			t.Fatalf("--compare nothing: exit %d", r.code)
		}
	})

	t.Run("api", func(t *testing.T) {
		// B-B carries no revocation data: the server asks its own OCSP
		// responder at publicBaseURL (loopback here), which its fetch guard
		// allows.
		for name, want := range map[string]report.Indication{"sealed-B-LT.pdf": report.TotalPassed, "sealed-B-B.pdf": report.TotalPassed,
			"one-byte-B-T.pdf": report.TotalFailed} {
			code, hdr, body := vfySend(t, srv, "/api/v1/verify", "", "application/pdf", []byte(mustRead(t, filepath.Join(work, name))))
			var rep report.Report
			if code != http.StatusOK || hdr.Get("Content-Type") != "application/json" || json.Unmarshal(body, &rep) != nil || rep.Indication != want {
				t.Fatalf("%s: %d %s %.300s", name, code, hdr.Get("Content-Type"), body)
			}
		}
		// curl -F: the first file part is the document; the same verdicts
		// as the CLI (here with the deployment's root: the server trusts it).
		curl := testenv.Tool(t, "curl")
		for name, want := range map[string]report.SubIndication{
			"sealed-B-LT.pdf": "", "one-byte-B-LT.pdf": report.HashFailure, "not-a-pdf.pdf": report.FormatFailure,
			"empty.pdf": report.FormatFailure, "multipart-as-is.pdf": report.FormatFailure,
		} {
			p := filepath.Join(work, name)
			out, err := exec.Command(curl, "-sS", "-F", "note=first a text field", "-F", "file=@"+p, srv.base+"/api/v1/verify").Output()
			var rep report.Report
			if err != nil || json.Unmarshal(out, &rep) != nil || rep.SubIndication != want {
				t.Fatalf("curl -F file=@%s: %v %.400s", name, err, out)
			}
			exit := 0
			if want != "" {
				exit = 1
			}
			cli := vfyReport(t, exit, p, "--data", dir)
			if cli.Indication != rep.Indication || cli.SubIndication != rep.SubIndication || !slices.Equal(cli.Errors, rep.Errors) {
				t.Fatalf("%s: the API says %s %s %q, the CLI %s %s %q", name, rep.Indication, rep.SubIndication, rep.Errors, cli.Indication, cli.SubIndication, cli.Errors)
			}
		}
		// Other media types: 415 with a problem body.
		for _, ct := range []string{"application/x-www-form-urlencoded", "text/plain", "application/xml"} {
			code, hdr, body := vfySend(t, srv, "/api/v1/verify", "", ct, []byte(mustRead(t, sealed["B-LT"])))
			if code != http.StatusUnsupportedMediaType || hdr.Get("Content-Type") != "application/problem+json" || !bytes.Contains(body, []byte(`"status":415`)) {
				t.Fatalf("%s: %d %s", ct, code, body)
			}
		}
		code, hdr, body := vfySend(t, srv, "/api/v1/verify", "", "application/pdf", bytes.Repeat([]byte("%PDF-1.7\n"), 1<<17))
		if code != http.StatusRequestEntityTooLarge || hdr.Get("Content-Type") != "application/problem+json" {
			t.Fatalf("over maxUploadBytes: %d %s", code, body)
		}
		if code, _, _ := srv.get(t, "/api/v1/verify", ""); code != http.StatusMethodNotAllowed {
			t.Fatalf("GET /api/v1/verify: %d", code)
		}
	})

	t.Run("page", func(t *testing.T) {
		code, hdr, body := srv.get(t, "/verify", "")
		if code != http.StatusOK || !strings.HasPrefix(hdr.Get("Content-Security-Policy"), "default-src 'none'") ||
			!strings.Contains(string(body), `dir="rtl"`) || !strings.Contains(string(body), `name="viewport"`) {
			t.Fatalf("GET /verify: %d %v\n%.400s", code, hdr, body)
		}
		for _, p := range []string{"/verify", "/verify/app.js", "/verify/app.css"} {
			_, _, b := srv.get(t, p, "")
			if regexp.MustCompile(`(?i)(src|href)\s*=\s*["']?(https?:)?//|url\(\s*["']?(https?:)?//|@import`).Match(b) {
				t.Fatalf("%s loads an external resource", p)
			}
		}
		browserCheck(t, srv.base, map[string]report.Indication{
			sealed["B-LT"]:                            report.TotalPassed,
			filepath.Join(work, "page-B-LT.pdf"):      report.TotalFailed,
			filepath.Join(work, "one-byte-B-LTA.pdf"): report.TotalFailed,
			filepath.Join(work, "not-a-pdf.pdf"):      report.TotalFailed,
		})
	})

	t.Run("rate-limit", func(t *testing.T) {
		limited := 0
		for i := 0; i < 60 && limited == 0; i++ {
			code, hdr, body := vfySend(t, srv, "/api/v1/verify", "", "application/pdf", []byte("not a PDF"))
			switch code {
			case http.StatusOK:
			case http.StatusTooManyRequests:
				if hdr.Get("Content-Type") != "application/problem+json" || hdr.Get("Retry-After") == "" {
					t.Fatalf("429 without problem body or Retry-After: %v %s", hdr, body)
				}
				limited++
			default:
				t.Fatalf("request %d: %d %s", i, code, body)
			}
		}
		if limited == 0 {
			t.Fatal("60 quick verifications from one address were never rate-limited (burst 20, 20/s)")
		}
		_, _, metrics := srv.get(t, "/metrics", "")
		for _, want := range []string{`thiqa_verify_requests_total{code="200"}`, `thiqa_verify_requests_total{code="413"}`, `thiqa_verify_requests_total{code="429"} 1`} {
			if !strings.Contains(string(metrics), want) {
				t.Fatalf("/metrics lacks %s", want)
			}
		}
	})

	// verify.trustedProxies is 127.0.0.1/32: clients connect from other
	// loopback addresses, the reverse proxy (httputil) from 127.0.0.1.
	t.Run("trusted-proxies", func(t *testing.T) {
		limitedAfter := func(c *http.Client, url string, hdr func(i int) http.Header) int {
			for i := 1; i <= 80; i++ {
				req, _ := http.NewRequest(http.MethodPost, url+"/api/v1/verify", strings.NewReader("not a PDF"))
				req.Header = hdr(i)
				req.Header.Set("Content-Type", "application/pdf")
				resp, err := c.Do(req)
				if err != nil {
					t.Fatal(err)
				}
				io.Copy(io.Discard, resp.Body) //nolint:errcheck // drained for reuse
				resp.Body.Close()
				switch resp.StatusCode {
				case http.StatusOK:
				case http.StatusTooManyRequests:
					return i
				default:
					t.Fatalf("request %d: %d", i, resp.StatusCode)
				}
			}
			return 0
		}
		// Directly from 127.0.0.2 (not a trusted proxy), a new spoofed
		// address on every request: one bucket all the same.
		spoof := func(i int) http.Header {
			return http.Header{"X-Forwarded-For": {fmt.Sprintf("198.51.100.%d", i)}, "Forwarded": {fmt.Sprintf("for=203.0.113.%d", i)}}
		}
		if n := limitedAfter(vfyClientFrom(t, "127.0.0.2"), srv.base, spoof); n == 0 || n > 40 {
			t.Fatalf("an untrusted client spoofing X-Forwarded-For was limited after %d requests (burst 20)", n)
		}
		// Through a reverse proxy on 127.0.0.1: clients 127.0.0.3 and
		// 127.0.0.4 have a bucket each.
		target, _ := url.Parse(srv.base)
		proxy := httptest.NewServer(httputil.NewSingleHostReverseProxy(target))
		defer proxy.Close()
		none := func(int) http.Header { return http.Header{} }
		if n := limitedAfter(vfyClientFrom(t, "127.0.0.3"), proxy.URL, none); n == 0 {
			t.Fatal("client 127.0.0.3 behind the proxy was never limited")
		}
		code, err := vfyPostFrom(vfyClientFrom(t, "127.0.0.4"), proxy.URL)
		if err != nil || code != http.StatusOK {
			t.Fatalf("client 127.0.0.4 behind the proxy right after 127.0.0.3 was limited: %d %v", code, err)
		}
	})
}

// vfyClientFrom returns an HTTP client whose connections leave from the
// loopback address ip.
func vfyClientFrom(t *testing.T, ip string) *http.Client {
	t.Helper()
	d := &net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(ip)}, Timeout: 10 * time.Second}
	tr := &http.Transport{DialContext: d.DialContext}
	t.Cleanup(tr.CloseIdleConnections)
	return &http.Client{Transport: tr, Timeout: time.Minute}
}

// vfyPostFrom posts a (non-PDF) document to base's verification API.
func vfyPostFrom(c *http.Client, base string) (int, error) {
	resp, err := c.Post(base+"/api/v1/verify", "application/pdf", strings.NewReader("not a PDF"))
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	_, err = io.Copy(io.Discard, resp.Body)
	return resp.StatusCode, err
}
