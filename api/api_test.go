package api

import (
	"bytes"
	"encoding/json"
	"net/http"
	"net/http/httptest"
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
