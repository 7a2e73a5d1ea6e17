package bench

import (
	"bytes"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

func FuzzParsePhases(f *testing.F) {
	f.Add("# HELP x\nthiqa_ca_issue_phase_seconds_sum{phase=\"lint\"} 1.5\nthiqa_ca_issue_phase_seconds_count{phase=\"lint\"} 3\nprocess_cpu_seconds_total 2.25\n")
	f.Add("thiqa_ca_issue_phase_seconds_sum{phase=\"sign\"} NaN\nthiqa_ca_issue_phase_seconds_sum{phase=\"x\"} 1\n")
	f.Fuzz(func(t *testing.T, in string) {
		got, err := parsePhases(strings.NewReader(in))
		if err != nil {
			return
		}
		for k := range got {
			if k != "cpu" && !strings.HasSuffix(k, "_sum") && !strings.HasSuffix(k, "_count") {
				t.Fatalf("unexpected key %q", k)
			}
		}
	})
}

func TestParsePhases(t *testing.T) {
	got, err := parsePhases(strings.NewReader("thiqa_ca_issue_phase_seconds_sum{phase=\"lint\"} 1.5\nthiqa_ca_issue_phase_seconds_count{phase=\"store\"} 3\nprocess_cpu_seconds_total 2.25\nthiqa_ca_issue_phase_seconds_sum{phase=\"other\"} 9\n"))
	if err != nil || got["lint_sum"] != 1.5 || got["store_count"] != 3 || got["cpu"] != 2.25 || len(got) != 3 {
		t.Fatalf("parsePhases = %v, %v", got, err)
	}
}

// TestPostIssueChecksTheAnswer: the load generator counts a 201 only when
// a certificate came back, and reports other answers with their status.
func TestPostIssueChecksTheAnswer(t *testing.T) {
	answers := map[string]struct {
		status int
		body   string
	}{
		"/good":    {http.StatusCreated, `{"serial":"01","certificate":"-----BEGIN CERTIFICATE-----\nMII=\n-----END CERTIFICATE-----\n","chain":[]}`},
		"/empty":   {http.StatusCreated, `{"serial":"01"}`},
		"/refused": {http.StatusBadRequest, "{\"title\":\"Invalid subject field\",\n\"status\":400}"},
		"/huge":    {http.StatusCreated, strings.Repeat("x", 1<<20+10)},
	}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Authorization") != "Bearer tok" || r.Header.Get("Content-Type") != "application/json" {
			w.WriteHeader(http.StatusUnauthorized)
			return
		}
		if b, _ := io.ReadAll(r.Body); string(b) != `{"x":1}` {
			w.WriteHeader(http.StatusTeapot)
			return
		}
		a := answers[r.URL.Path]
		w.WriteHeader(a.status)
		_, _ = io.WriteString(w, a.body)
	}))
	defer srv.Close()
	hdr := http.Header{"Authorization": {"Bearer tok"}, "Content-Type": {"application/json"}}
	body := &bytes.Reader{}
	buf := make([]byte, 0, 16)
	for path, want := range map[string]struct {
		code int
		msg  string
	}{
		"/good":    {http.StatusCreated, ""},
		"/empty":   {0, "201 without a certificate"},
		"/refused": {http.StatusBadRequest, `{"title":"Invalid subject field", "status":400}`},
		"/huge":    {0, "answer too large"},
	} {
		for range 2 { // the second round reuses the grown buffer
			var code int
			var msg string
			code, buf, msg = postIssue(t.Context(), srv.Client(), srv.URL+path, hdr, body, []byte(`{"x":1}`), buf)
			if code != want.code || !strings.Contains(msg, want.msg) || (want.msg == "" && msg != "") {
				t.Fatalf("%s: got %d %q, want %d %q", path, code, msg, want.code, want.msg)
			}
		}
	}
}
