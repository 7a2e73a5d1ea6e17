package api

import (
	"bytes"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

// The served document is JSON in openapi.yaml's order, names the given
// server, and carries the captured examples.
func TestDocument(t *testing.T) {
	raw, err := Document("https://trust.example.om")
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.HasPrefix(raw, []byte("{\n  \"openapi\": \"3.1.0\",\n  \"info\"")) {
		t.Fatalf("document does not start with openapi and info:\n%.200s", raw)
	}
	var doc struct {
		Servers    []struct{ URL string } `json:"servers"`
		Components struct {
			Examples map[string]json.RawMessage `json:"examples"`
		} `json:"components"`
	}
	if err := json.Unmarshal(raw, &doc); err != nil {
		t.Fatal(err)
	}
	if len(doc.Servers) != 1 || doc.Servers[0].URL != "https://trust.example.om" {
		t.Fatalf("servers = %+v", doc.Servers)
	}
	var captured map[string]json.RawMessage
	if err := json.Unmarshal(examples, &captured); err != nil {
		t.Fatal(err)
	}
	if len(doc.Components.Examples) != len(captured) {
		t.Fatalf("%d examples served, %d captured", len(doc.Components.Examples), len(captured))
	}

	h, err := Handler("")
	if err != nil {
		t.Fatal(err)
	}
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, Path, nil))
	if rec.Code != http.StatusOK || rec.Header().Get("Content-Type") != "application/json" || !json.Valid(rec.Body.Bytes()) {
		t.Fatalf("GET %s: %d %s", Path, rec.Code, rec.Header().Get("Content-Type"))
	}
}

// Every operation documents a 2XX answer, except the people's page forms
// (/my/, /ra/), which answer 303 See Other: redocly's
// operation-2xx-response is off for them (api/redocly.yaml), so this
// test keeps it for the rest.
func TestOperationsAnswerSuccess(t *testing.T) {
	raw, err := Document("https://trust.example.om")
	if err != nil {
		t.Fatal(err)
	}
	var doc struct {
		Paths map[string]map[string]struct {
			Responses map[string]json.RawMessage `json:"responses"`
		} `json:"paths"`
	}
	if err := json.Unmarshal(raw, &doc); err != nil {
		t.Fatal(err)
	}
	methods := map[string]bool{"get": true, "put": true, "post": true, "delete": true, "patch": true, "head": true, "options": true}
	checked := 0
	for path, ops := range doc.Paths {
		if strings.HasPrefix(path, "/my/") || strings.HasPrefix(path, "/ra/") {
			continue
		}
		for method, op := range ops {
			if !methods[method] {
				continue
			}
			checked++
			ok := false
			for code := range op.Responses {
				ok = ok || strings.HasPrefix(code, "2")
			}
			if !ok {
				t.Errorf("%s %s documents no 2XX answer", strings.ToUpper(method), path)
			}
		}
	}
	if checked < 50 {
		t.Fatalf("only %d operations checked: is the document read?", checked)
	}
}
