package backup_test

import (
	"context"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/thiqa/thiqa/backup"
	"github.com/thiqa/thiqa/store/storetest"
)

// The manifest names every setting whose file the backup does not hold:
// one line per setting even when two settings name one file (a client CA
// that is also a trust anchor), and a file reached through a linked folder
// inside the data folder, which the walk does not enter. A linked file is
// copied, and so not named.
func TestBackupNamesFilesOutsideTheFolder(t *testing.T) {
	src := newSource(t, storetest.Dialects()[0])
	host := t.TempDir()
	writeTestFile(t, filepath.Join(host, "server.pem"), "cert")
	writeTestFile(t, filepath.Join(host, "server.key"), "key")
	writeTestFile(t, filepath.Join(host, "ca.pem"), "ca")
	if err := os.Symlink(host, filepath.Join(src.dir, "host")); err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(filepath.Join(src.dir, "tls"), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(filepath.Join(host, "server.key"), filepath.Join(src.dir, "tls", "server.key")); err != nil {
		t.Fatal(err)
	}
	o := src.options(filepath.Join(t.TempDir(), "backup.tar.gz"))
	o.Named = map[string]string{
		"tls.certFile":               filepath.Join(src.dir, "host", "server.pem"),
		"tls.keyFile":                filepath.Join(src.dir, "tls", "server.key"),
		"auth.mtls.clientCAFiles[0]": filepath.Join(host, "ca.pem"),
		"verify.trustAnchorFiles[0]": filepath.Join(host, "ca.pem"),
		"ca.certDir":                 filepath.Join(src.dir, "ca"),
	}
	m, err := backup.Create(context.Background(), o)
	if err != nil {
		t.Fatal(err)
	}
	const why = " is outside the data folder: back it up with the host's files"
	for _, want := range []string{
		filepath.Join(host, "ca.pem") + ": auth.mtls.clientCAFiles[0]" + why,
		filepath.Join(host, "ca.pem") + ": verify.trustAnchorFiles[0]" + why,
		filepath.Join(src.dir, "host", "server.pem") + ": tls.certFile" + why,
	} {
		if !slices.Contains(m.Excluded, want) {
			t.Errorf("manifest lacks %q:\n%s", want, strings.Join(m.Excluded, "\n"))
		}
	}
	for _, x := range m.Excluded {
		if strings.Contains(x, "tls.keyFile") || strings.Contains(x, "ca.certDir") {
			t.Errorf("named though the backup holds it: %q", x)
		}
	}
	if !slices.ContainsFunc(m.Files, func(f backup.File) bool { return f.Name == "data/tls/server.key" }) {
		t.Errorf("the linked file is not in the backup: %v", m.Files)
	}
}
