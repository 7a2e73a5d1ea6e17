package tsl

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"

	"github.com/thiqa/thiqa/verify/report"
)

// TestSummaryWrite: the JSON form is indented and keeps its keys; the
// text form starts with the indication.
func TestSummaryWrite(t *testing.T) {
	s := Summarize("list.xml", &Result{Indication: report.TotalFailed, Errors: []string{"bad"}})
	var b bytes.Buffer
	if err := s.WriteJSON(&b); err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := json.Unmarshal(b.Bytes(), &m); err != nil || m["location"] != "list.xml" || m["indication"] != string(report.TotalFailed) ||
		!strings.Contains(b.String(), "\n  \"location\"") {
		t.Fatalf("JSON %s: %v", b.String(), err)
	}
	b.Reset()
	if err := s.WriteText(&b); err != nil || !strings.HasPrefix(b.String(), "Indication: "+string(report.TotalFailed)) {
		t.Fatalf("text %q: %v", b.String(), err)
	}
}
