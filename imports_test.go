// Package thiqa_test holds the architecture test: the import rules of
// DESIGN.md's layout, checked over the source of every package.
package thiqa_test

import (
	"go/parser"
	"go/token"
	"io/fs"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"
	"testing"
)

// module is this module's path.
const module = "github.com/thiqa/thiqa"

// The rooms the rules name, as module-relative package paths.
var (
	// serviceRooms hold the services, and the rooms that work like them
	// (backup, trusted lists): they declare what they consume.
	serviceRooms = []string{"ca", "enrol", "signing", "signer", "timestamp", "identity", "verify", "backup", "tsl", "notify"}
	// platformOnly may be imported by cmd/... alone (store by store/...
	// too: its test helpers).
	platformOnly = []string{"store", "hsm", "cmd/thiqa/internal/config"}
	// signingCode is what verification must never trust.
	signingCode = []string{"ca", "signer", "signing", "hsm", "tsl/build"}
)

// under reports whether pkg is room or inside it.
func under(pkg, room string) bool { return pkg == room || strings.HasPrefix(pkg, room+"/") }

func underAny(pkg string, rooms []string) bool {
	return slices.ContainsFunc(rooms, func(r string) bool { return under(pkg, r) })
}

// violations returns every import of graph (package → the module packages
// its non-test files import, module-relative) that breaks a rule.
func violations(graph map[string][]string) []string {
	var out []string
	bad := func(pkg, imp, rule string) { out = append(out, pkg+" imports "+imp+": "+rule) }
	for pkg, imps := range graph {
		for _, imp := range imps {
			// Rule 1: only cmd/... imports store, hsm and the configuration.
			if underAny(imp, platformOnly) && !under(pkg, "cmd") && !(under(imp, "store") && under(pkg, "store")) && !under(pkg, imp) {
				bad(pkg, imp, "rule 1: only cmd/... imports store, hsm and the configuration package")
			}
			// Rule 2: services import neither store, hsm nor the configuration.
			if underAny(pkg, serviceRooms) && underAny(imp, platformOnly) {
				bad(pkg, imp, "rule 2: a service declares what it consumes instead")
			}
			// Rule 3: no internal/* package imports a service.
			if under(pkg, "internal") && underAny(imp, serviceRooms) {
				bad(pkg, imp, "rule 3: internal packages are leaves, never a service")
			}
			// Rule 4: verify imports no signing code, policies nothing of
			// the project, nothing imports cmd.
			if under(pkg, "verify") && underAny(imp, signingCode) {
				bad(pkg, imp, "rule 4: verification imports no signing code")
			}
			if under(pkg, "policies") {
				bad(pkg, imp, "rule 4: policies imports nothing of the project")
			}
			if under(imp, "cmd") && !under(pkg, "cmd") {
				bad(pkg, imp, "rule 4: nothing imports cmd")
			}
			// Rule 6: the pages are clients of the API: web/... imports no
			// service, so every action goes through the API's
			// authorisation, service code and audit.
			if under(pkg, "web") && underAny(imp, serviceRooms) {
				bad(pkg, imp, "rule 6: the pages call the API, never a service")
			}
		}
	}
	sort.Strings(out)
	return out
}

// importGraph reads the imports of every non-test Go file under root.
func importGraph(t *testing.T, root string) map[string][]string {
	t.Helper()
	graph := map[string][]string{}
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			if name := d.Name(); p != root && (strings.HasPrefix(name, ".") || name == "testdata" || name == "node_modules") {
				return filepath.SkipDir
			}
			return nil
		}
		if !strings.HasSuffix(p, ".go") || strings.HasSuffix(p, "_test.go") {
			return nil
		}
		f, err := parser.ParseFile(token.NewFileSet(), p, nil, parser.ImportsOnly)
		if err != nil {
			return err
		}
		pkg := filepath.ToSlash(filepath.Dir(p))
		for _, imp := range f.Imports {
			path, _ := strconv.Unquote(imp.Path.Value)
			if rel, ok := strings.CutPrefix(path, module+"/"); ok && !slices.Contains(graph[pkg], rel) {
				graph[pkg] = append(graph[pkg], rel)
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return graph
}

// TestImportRules checks DESIGN.md's import rules over the whole module.
func TestImportRules(t *testing.T) {
	graph := importGraph(t, ".")
	if len(graph["cmd/thiqa"]) == 0 || len(graph["store"]) == 0 {
		t.Fatalf("the import graph looks empty: %v", graph)
	}
	for _, v := range violations(graph) {
		t.Error(v)
	}
}

// TestImportRulesCatchViolations shows that each rule fires: a graph with
// one breach of each rule yields exactly those violations.
func TestImportRulesCatchViolations(t *testing.T) {
	graph := map[string][]string{
		"cmd/thiqa":             {"store", "hsm", "cmd/thiqa/internal/config", "signing"}, // fine
		"store":                 {"ca", "identity", "timestamp"},                          // fine: it implements their interfaces
		"store/storetest":       {"store"},                                                // fine
		"web":                   {"store"},                                                // rule 1
		"signing":               {"hsm", "signer"},                                        // rules 1 and 2
		"ca/revocation":         {"cmd/thiqa/internal/config"},                            // rules 1, 2 and 4 (cmd)
		"internal/auth":         {"ca/revocation"},                                        // rule 3
		"verify/pdf":            {"signer/pdfdoc"},                                        // rule 4
		"policies":              {"internal/problem"},                                     // rule 4
		"timestamp":             {"timestamp/tsp"},                                        // fine
		"internal/audit":        {"internal/problem"},                                     // fine
		"verify":                {"verify/path"},                                          // fine
		"signing/csc":           {"signing", "internal/auth"},                             // fine
		"hsm/keyring":           {"hsm", "internal/audit", "internal/auth"},               // fine: platform under platform
		"signing/client":        {"hsm/keyring"},                                          // rules 1 and 2
		"cmd/thiqa/internal/io": {"cmd/thiqa/internal/config"},                            // fine
		"backup":                {"store"},                                                // rules 1 and 2
		"verify/tsl":            {"tsl/build"},                                            // rule 4
		"tsl/build":             {"verify/tsl", "internal/problem"},                       // fine
		"ca/hierarchy":          {"ca", "internal/audit"},                                 // fine
		"web/portal":            {"internal/auth", "signing"},                             // rule 6
	}
	want := []string{
		"backup imports store: rule 1: only cmd/... imports store, hsm and the configuration package",
		"backup imports store: rule 2: a service declares what it consumes instead",
		"ca/revocation imports cmd/thiqa/internal/config: rule 1: only cmd/... imports store, hsm and the configuration package",
		"ca/revocation imports cmd/thiqa/internal/config: rule 2: a service declares what it consumes instead",
		"ca/revocation imports cmd/thiqa/internal/config: rule 4: nothing imports cmd",
		"internal/auth imports ca/revocation: rule 3: internal packages are leaves, never a service",
		"policies imports internal/problem: rule 4: policies imports nothing of the project",
		"signing imports hsm: rule 1: only cmd/... imports store, hsm and the configuration package",
		"signing imports hsm: rule 2: a service declares what it consumes instead",
		"signing/client imports hsm/keyring: rule 1: only cmd/... imports store, hsm and the configuration package",
		"signing/client imports hsm/keyring: rule 2: a service declares what it consumes instead",
		"verify/pdf imports signer/pdfdoc: rule 4: verification imports no signing code",
		"verify/tsl imports tsl/build: rule 4: verification imports no signing code",
		"web imports store: rule 1: only cmd/... imports store, hsm and the configuration package",
		"web/portal imports signing: rule 6: the pages call the API, never a service",
	}
	got := violations(graph)
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Fatalf("violations:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}
