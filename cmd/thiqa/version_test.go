package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
)

// TestVersion checks `thiqa version` of a plain build (devel, unknown build
// date) and of a build that sets the identity with -ldflags -X, the way
// `make build` does.
func TestVersion(t *testing.T) {
	plain := mustThiqa(t, nil, "version").stdout
	lines := strings.Split(strings.TrimSpace(plain), "\n")
	if len(lines) != 4 || lines[0] != "thiqa devel" || lines[2] != "go: "+runtime.Version() || lines[3] != "built: unknown" ||
		!strings.HasPrefix(lines[1], "commit: ") || lines[1] == "commit: " {
		t.Fatalf("plain build: %q", plain)
	}

	bin := filepath.Join(t.TempDir(), "thiqa")
	ldflags := "-X main.version=1.2.3+git4.abc -X main.commit=0123456789abcdef -X main.buildDate=2026-01-02T03:04:05Z"
	build := exec.Command("go", "build", "-trimpath", "-ldflags", ldflags, "-o", bin, ".")
	build.Env = os.Environ()
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	out, err := exec.Command(bin, "version").Output()
	if err != nil {
		t.Fatal(err)
	}
	want := "thiqa 1.2.3+git4.abc\ncommit: 0123456789abcdef\ngo: " + runtime.Version() + "\nbuilt: 2026-01-02T03:04:05Z\n"
	if string(out) != want {
		t.Fatalf("stamped build:\n%s\nwant:\n%s", out, want)
	}
	if r := thiqa(t, nil, "version", "extra"); r.code != 2 {
		t.Fatalf("version with an argument: exit %d", r.code)
	}
}
