package main

import (
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/thiqa/thiqa/internal/problem"
	"github.com/thiqa/thiqa/web"
)

// TestVerifyPageBusy: when the API answers 503 (too many verifications in
// progress), the page says that the service is busy, in Arabic and
// English, rather than a bare status code.
func TestVerifyPageBusy(t *testing.T) {
	mux := http.NewServeMux()
	page := web.Handler(web.Options{APIPath: "/api/v1/verify", MaxUploadBytes: 1 << 20})
	mux.Handle("GET /verify", page)
	mux.Handle("GET /verify/", page)
	mux.HandleFunc("POST /api/v1/verify", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Retry-After", "3")
		problem.Error(w, http.StatusServiceUnavailable, "the server is verifying as many documents as it can at once; retry shortly")
	})
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	doc := filepath.Join(t.TempDir(), "doc.pdf")
	if err := os.WriteFile(doc, []byte("%PDF-1.7\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	c := startChromium(t)
	c.call("Page.navigate", map[string]any{"url": srv.URL + "/verify"}, nil)
	c.waitFor(`document.readyState === "complete" && document.getElementById("file") ? "yes" : ""`, 30*time.Second)
	var d struct {
		Root struct {
			NodeID int `json:"nodeId"`
		} `json:"root"`
	}
	c.call("DOM.getDocument", map[string]any{"depth": 0}, &d)
	var q struct {
		NodeID int `json:"nodeId"`
	}
	c.call("DOM.querySelector", map[string]any{"nodeId": d.Root.NodeID, "selector": "#file"}, &q)
	c.call("DOM.setFileInputFiles", map[string]any{"files": []string{doc}, "nodeId": q.NodeID}, nil)
	c.eval(`document.getElementById("go").click(); "clicked"`)
	got := c.waitFor(`document.getElementById("status").className === "error" ? document.getElementById("status").textContent : ""`, 30*time.Second)
	for _, want := range []string{"الخدمة مشغولة", "The service is busy with other verifications"} {
		if !strings.Contains(got, want) {
			t.Fatalf("the page shows %q, want it to say %q", got, want)
		}
	}
}
