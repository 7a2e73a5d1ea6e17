package apitest

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/thiqa/thiqa/api"
	"github.com/thiqa/thiqa/internal/testenv"
)

// Every reference of the document resolves, every captured example is
// used, and each example validates against the schema of every media type
// that shows it.
func TestExamplesMatchTheirSchemas(t *testing.T) {
	d, err := Load()
	if err != nil {
		t.Fatal(err)
	}
	var walk func(v any)
	walk = func(v any) {
		switch x := v.(type) {
		case map[string]any:
			if ref, ok := x["$ref"].(string); ok {
				if _, err := d.Resolve(ref); err != nil {
					t.Errorf("unresolved reference: %v", err)
				}
			}
			for _, c := range x {
				walk(c)
			}
		case []any:
			for _, c := range x {
				walk(c)
			}
		}
	}
	walk(d.Raw())

	used := map[string]bool{}
	for _, u := range d.ExampleUses() {
		used[u.Name] = true
		value, err := d.ExampleValue(u.Name)
		if err != nil {
			t.Errorf("%s: %v (run go test ./cmd/thiqa -run TestWalkthrough -update-api-examples)", u.MediaType, err)
			continue
		}
		if err := d.Validate(u.MediaType, value); err != nil {
			t.Errorf("example %s does not match %s: %v", u.Name, u.MediaType, err)
		}
	}
	examples, _ := d.Raw()["components"].(map[string]any)["examples"].(map[string]any)
	for name := range examples {
		if !used[name] {
			t.Errorf("example %s is captured but no operation shows it", name)
		}
	}
	if len(used) < 30 {
		t.Errorf("only %d examples are shown", len(used))
	}
}

// The document passes an independent linter: @redocly/cli's recommended
// rules (api/redocly.yaml).
func TestRedoclyLint(t *testing.T) {
	dir := testenv.NPMPackages(t, "@redocly/cli@2.77.0")
	doc, err := api.Document("https://trust.example.om")
	if err != nil {
		t.Fatal(err)
	}
	file := filepath.Join(t.TempDir(), "openapi.json")
	if err := os.WriteFile(file, doc, 0o644); err != nil {
		t.Fatal(err)
	}
	cfg, err := filepath.Abs("../redocly.yaml")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, filepath.Join(dir, "node_modules", ".bin", "redocly"), "lint", "--config", cfg, "--format", "stylish", file)
	cmd.Env = append(os.Environ(), "REDOCLY_TELEMETRY=off", "REDOCLY_SUPPRESS_UPDATE_NOTICE=true")
	out, err := cmd.CombinedOutput()
	if err != nil || !strings.Contains(string(out), "valid") {
		t.Fatalf("redocly lint: %v\n%s", err, out)
	}
	if regexp.MustCompile(`\d+:\d+\s+warning\s`).Match(out) {
		t.Errorf("redocly lint warns:\n%s", out)
	}
}
