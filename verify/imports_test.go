package verify

import (
	"go/parser"
	"go/token"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// TestNoSigningImports: a verifier must never trust what the signer
// believes, so nothing under verify/ imports ca/, signer/, signing/ or hsm/
// (nor the store or the configuration, rule 2 of DESIGN.md).
func TestNoSigningImports(t *testing.T) {
	forbidden := []string{"github.com/thiqa/thiqa/ca", "github.com/thiqa/thiqa/signer", "github.com/thiqa/thiqa/hsm",
		"github.com/thiqa/thiqa/signing", "github.com/thiqa/thiqa/store", "github.com/thiqa/thiqa/internal/config"}
	err := filepath.Walk(".", func(p string, info os.FileInfo, err error) error {
		if err != nil || info.IsDir() || !strings.HasSuffix(p, ".go") {
			return err
		}
		f, err := parser.ParseFile(token.NewFileSet(), p, nil, parser.ImportsOnly)
		if err != nil {
			return err
		}
		for _, imp := range f.Imports {
			path, _ := strconv.Unquote(imp.Path.Value)
			for _, bad := range forbidden {
				if path == bad || strings.HasPrefix(path, bad+"/") {
					t.Errorf("%s imports %s", p, path)
				}
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}
