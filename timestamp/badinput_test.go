package timestamp

import (
	"bytes"
	"crypto/sha256"
	"encoding/asn1"
	"encoding/json"
	"math/big"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/thiqa/thiqa/internal/problem"
	"github.com/thiqa/thiqa/timestamp/tsp"
)

func opensslQuery(t *testing.T, args ...string) []byte {
	t.Helper()
	dir := t.TempDir()
	data, q := filepath.Join(dir, "data"), filepath.Join(dir, "q.tsq")
	_ = os.WriteFile(data, []byte("hello"), 0o600)
	if out, ok := opensslRun(t, append([]string{"ts", "-query", "-data", data, "-out", q}, args...)...); !ok {
		t.Fatalf("openssl ts -query: %s", out)
	}
	b, _ := os.ReadFile(q)
	return b
}

func goQuery(t testing.TB, mutate func(*tsp.Request)) []byte {
	t.Helper()
	d := sha256.Sum256([]byte("hello"))
	r := &tsp.Request{MessageImprint: tsp.MessageImprint{HashAlgorithm: tsp.OIDSHA256, HashedMessage: d[:]}, Nonce: big.NewInt(42), CertReq: true}
	if mutate != nil {
		mutate(r)
	}
	b, err := r.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestRejections(t *testing.T) {
	tsa := newTestTSA(t, Config{HashAlgorithms: []string{"SHA-256", "SHA-384", "SHA-512"}}, nil)
	srv := httptest.NewServer(tsa.Handler(nil))
	defer srv.Close()
	good := goQuery(t, nil)
	versionTwo := bytes.Clone(good)
	versionTwo[4] = 2 // SEQUENCE hdr (2 bytes), INTEGER tag+len, value
	cases := []struct {
		name     string
		body     []byte
		fail     tsp.FailInfo
		textWant string // in openssl ts -reply -text
	}{
		{"sha1", opensslQuery(t, "-sha1"), tsp.BadAlg, "unrecognized or unsupported algorithm identifier"},
		{"md5", opensslQuery(t, "-md5"), tsp.BadAlg, ""},
		{"sha3-not-configured", opensslQuery(t, "-sha3-256"), tsp.BadAlg, ""},
		{"sha224", goQuery(t, func(r *tsp.Request) {
			r.MessageImprint.HashAlgorithm = tsp.OIDSHA224
			r.MessageImprint.HashedMessage = make([]byte, 28)
		}), tsp.BadAlg, ""},
		{"unknown-alg", goQuery(t, func(r *tsp.Request) { r.MessageImprint.HashAlgorithm = asn1.ObjectIdentifier{1, 2, 3} }), tsp.BadAlg, ""},
		{"params-not-null", goQuery(t, func(r *tsp.Request) { r.MessageImprint.HashParams = []byte{0x04, 0x00} }), tsp.BadAlg, ""},
		{"short-imprint", goQuery(t, func(r *tsp.Request) { r.MessageImprint.HashedMessage = r.MessageImprint.HashedMessage[:31] }), tsp.BadDataFormat, "data submitted has the wrong format"},
		{"long-imprint", goQuery(t, func(r *tsp.Request) { r.MessageImprint.HashedMessage = make([]byte, 48) }), tsp.BadDataFormat, ""},
		{"unknown-policy", opensslQuery(t, "-sha256", "-tspolicy", "1.2.3.4"), tsp.UnacceptedPolicy, "the requested TSA policy is not supported by the TSA"},
		{"unknown-extension", goQuery(t, func(r *tsp.Request) {
			r.Extensions = []tsp.Extension{{ID: asn1.ObjectIdentifier{1, 2, 3, 4}, Value: []byte{5, 0}}}
		}), tsp.UnacceptedExtension, "requested extension is not supported"},
		{"version-2", versionTwo, tsp.BadRequest, ""},
		{"empty", nil, tsp.BadDataFormat, ""},
		{"truncated", good[:len(good)-5], tsp.BadDataFormat, ""},
		{"trailing-garbage", append(bytes.Clone(good), 0x00, 0x01), tsp.BadDataFormat, ""},
		{"not-der", []byte("GET / HTTP/1.0\r\n\r\n"), tsp.BadDataFormat, ""},
		{"certreq-false-explicit", tamperCertReq(good), tsp.BadDataFormat, ""},
		{"huge-nonce", goQuery(t, func(r *tsp.Request) { r.Nonce = new(big.Int).Lsh(big.NewInt(1), 700) }), tsp.BadDataFormat, ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			before, recs := tsa.serials.n.Load(), tsa.recorder.count()
			raw := postQuery(t, srv.URL, tc.body)
			resp, err := tsp.ParseResponse(raw)
			if err != nil {
				t.Fatal(err)
			}
			if resp.Status.Status != tsp.StatusRejection || resp.Status.FailInfo != tc.fail || resp.Token != nil {
				t.Fatalf("status %v, want rejection %v", resp.Status, tc.fail)
			}
			if len(resp.Status.Text) == 0 || resp.Status.Text[0] == "" {
				t.Errorf("rejection without statusString")
			}
			if got := tsa.serials.n.Load(); got != before {
				t.Errorf("%d serials consumed by a rejected request", got-before)
			}
			if got := tsa.recorder.count(); got != recs {
				t.Errorf("rejected request recorded")
			}
			if tc.textWant != "" {
				text, _ := opensslRun(t, "ts", "-reply", "-in", tempFile(t, "r.tsr", raw), "-text")
				if !strings.Contains(text, "Status: Rejected.") || !strings.Contains(text, tc.textWant) {
					t.Errorf("openssl reads:\n%s\nwant %q", text, tc.textWant)
				}
			}
		})
	}
	if got := testCounter(t, tsa, "thiqa_tsa_rejections_total", "badAlg"); got != 6 {
		t.Errorf("badAlg rejections metric %v, want 6", got)
	}
}

// tamperCertReq rewrites a request that ends with certReq TRUE into one with
// an explicit certReq FALSE (the DER DEFAULT, which must be omitted).
func tamperCertReq(b []byte) []byte {
	out := bytes.Clone(b)
	out[len(out)-1] = 0x00
	return out
}

func testCounter(t *testing.T, tsa *testTSA, name, label string) float64 {
	t.Helper()
	mfs, err := tsa.reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
		for _, m := range mf.GetMetric() {
			if label == "" || (len(m.GetLabel()) > 0 && m.GetLabel()[0].GetValue() == label) {
				return m.GetCounter().GetValue()
			}
		}
	}
	return 0
}

func TestClockOutOfSync(t *testing.T) {
	tsa := newTestTSA(t, Config{}, nil)
	tsa.clock.Set(false)
	raw, st := tsa.Respond(t.Context(), goQuery(t, nil), "")
	if st.Status != tsp.StatusRejection || st.FailInfo != tsp.TimeNotAvailable {
		t.Fatalf("status %v, want timeNotAvailable", st)
	}
	text, _ := opensslRun(t, "ts", "-reply", "-in", tempFile(t, "r.tsr", raw), "-text")
	if !strings.Contains(text, "the TSA's time source is not available") {
		t.Errorf("openssl reads:\n%s", text)
	}
	if tsa.serials.n.Load() != 0 || tsa.recorder.count() != 0 {
		t.Error("a serial or record was consumed while the clock was out of sync")
	}
	if err := tsa.Ready(); err == nil {
		t.Error("Ready() is nil while the clock is out of sync")
	}
	tsa.clock.Set(true)
	if err := tsa.Ready(); err != nil {
		t.Errorf("Ready(): %v", err)
	}
	if _, st := tsa.Respond(t.Context(), goQuery(t, nil), ""); st.Status != tsp.StatusGranted {
		t.Fatalf("status %v after the clock recovered", st)
	}
}

func TestRecorderFailureIssuesNoToken(t *testing.T) {
	tsa := newTestTSA(t, Config{}, nil)
	tsa.recorder.fail.Store(true)
	_, st := tsa.Respond(t.Context(), goQuery(t, nil), "")
	if st.Status != tsp.StatusRejection || st.FailInfo != tsp.SystemFailure {
		t.Fatalf("status %v, want systemFailure", st)
	}
	if _, err := tsa.Issue(t.Context(), goQuery(t, nil), ""); err == nil {
		t.Fatal("Issue returned a token although recording failed")
	}
}

func TestHTTPErrors(t *testing.T) {
	tsa := newTestTSA(t, Config{}, nil)
	srv := httptest.NewServer(tsa.Handler(nil))
	defer srv.Close()
	good := goQuery(t, nil)
	check := func(t *testing.T, req *http.Request, want int) {
		t.Helper()
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var p problem.Details
		if resp.StatusCode != want || resp.Header.Get("Content-Type") != problem.ContentType {
			t.Fatalf("HTTP %d %q, want %d problem JSON", resp.StatusCode, resp.Header.Get("Content-Type"), want)
		}
		if err := json.NewDecoder(resp.Body).Decode(&p); err != nil || p.Status != want || p.Detail == "" {
			t.Fatalf("problem body %+v: %v", p, err)
		}
	}
	t.Run("wrong-content-type", func(t *testing.T) {
		req, _ := http.NewRequest(http.MethodPost, srv.URL, bytes.NewReader(good))
		req.Header.Set("Content-Type", "application/octet-stream")
		check(t, req, http.StatusUnsupportedMediaType)
	})
	t.Run("no-content-type", func(t *testing.T) {
		req, _ := http.NewRequest(http.MethodPost, srv.URL, bytes.NewReader(good))
		check(t, req, http.StatusUnsupportedMediaType)
	})
	t.Run("get", func(t *testing.T) {
		req, _ := http.NewRequest(http.MethodGet, srv.URL, nil)
		check(t, req, http.StatusMethodNotAllowed)
	})
	t.Run("oversized", func(t *testing.T) {
		req, _ := http.NewRequest(http.MethodPost, srv.URL, bytes.NewReader(make([]byte, 64<<10+1)))
		req.Header.Set("Content-Type", QueryContentType)
		check(t, req, http.StatusRequestEntityTooLarge)
	})
	t.Run("oversized-chunked", func(t *testing.T) {
		req, _ := http.NewRequest(http.MethodPost, srv.URL, struct{ *bytes.Reader }{bytes.NewReader(make([]byte, 100<<10))})
		req.Header.Set("Content-Type", QueryContentType)
		req.ContentLength = -1
		check(t, req, http.StatusRequestEntityTooLarge)
	})
	t.Run("content-type-with-params", func(t *testing.T) {
		req, _ := http.NewRequest(http.MethodPost, srv.URL, bytes.NewReader(good))
		req.Header.Set("Content-Type", "application/timestamp-query; charset=binary")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("HTTP %d", resp.StatusCode)
		}
	})
	if tsa.serials.n.Load() != 1 {
		t.Errorf("serials consumed: %d, want 1 (the one good request)", tsa.serials.n.Load())
	}
}
