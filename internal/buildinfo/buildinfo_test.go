package buildinfo

import (
	"runtime"
	"strings"
	"testing"
)

func TestRead(t *testing.T) {
	b := Read("", "", "")
	if b.Version != "devel" || b.BuildDate != "unknown" || b.Commit == "" || b.GoVersion != runtime.Version() {
		t.Fatalf("unstamped: %+v", b)
	}
	b = Read("1.2.3", "abc", "2026-01-02T03:04:05Z")
	var out strings.Builder
	if err := b.WriteText(&out); err != nil {
		t.Fatal(err)
	}
	if want := "thiqa 1.2.3\ncommit: abc\ngo: " + runtime.Version() + "\nbuilt: 2026-01-02T03:04:05Z\n"; out.String() != want {
		t.Fatalf("got %q, want %q", out.String(), want)
	}
}
