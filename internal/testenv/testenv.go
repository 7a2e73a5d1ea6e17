// Package testenv gives tests the real parts they run against: the SoftHSM2
// PKCS#11 module with a private token directory, a fresh PostgreSQL database
// on the throwaway cluster that scripts/testenv.sh starts, and the external
// verifiers (openssl, pdfsig, qpdf).
//
// A missing part fails the test: Thiqa's tests never skip for want of SoftHSM,
// PostgreSQL or the independent verifiers. Run them through `make test`, which
// installs and starts everything.
package testenv

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

// DefaultModule is where Debian's softhsm2 package installs the PKCS#11 module.
const DefaultModule = "/usr/lib/softhsm/libsofthsm2.so"

var softhsmOnce sync.Once

// PKCS11Module returns the path of the SoftHSM2 module and makes sure the
// process uses a private SoftHSM configuration (SOFTHSM2_CONF), creating one
// in a temporary folder when the environment does not name one. Call it
// before the module is loaded in this process.
func PKCS11Module(t testing.TB) string {
	t.Helper()
	module := os.Getenv("THIQA_PKCS11_MODULE")
	if module == "" {
		module = DefaultModule
	}
	if _, err := os.Stat(module); err != nil {
		t.Fatalf("testenv: PKCS#11 module %s: %v (install softhsm2, or run `make test`)", module, err)
	}
	var confErr error
	softhsmOnce.Do(func() {
		if os.Getenv("SOFTHSM2_CONF") != "" {
			return
		}
		dir, err := os.MkdirTemp(TempRoot(), "softhsm-")
		if err != nil {
			confErr = err
			return
		}
		tokens := filepath.Join(dir, "tokens")
		if err := os.MkdirAll(tokens, 0o700); err != nil {
			confErr = err
			return
		}
		conf := filepath.Join(dir, "softhsm2.conf")
		body := fmt.Sprintf("directories.tokendir = %s\nobjectstore.backend = file\nlog.level = ERROR\nslots.removable = false\n", tokens)
		if err := os.WriteFile(conf, []byte(body), 0o600); err != nil {
			confErr = err
			return
		}
		confErr = os.Setenv("SOFTHSM2_CONF", conf)
	})
	if confErr != nil {
		t.Fatalf("testenv: preparing a SoftHSM configuration: %v", confErr)
	}
	return module
}

// TempRoot is the folder for throwaway files that outlive one test (the
// process-wide SoftHSM configuration): THIQA_TEST_TMP under `make test`,
// otherwise the system's temporary folder.
func TempRoot() string {
	if d := os.Getenv("THIQA_TEST_TMP"); d != "" {
		return d
	}
	return os.TempDir()
}

// UniqueLabel returns prefix followed by random hex, short enough for a
// PKCS#11 token label (32 bytes).
func UniqueLabel(prefix string) string {
	var b [6]byte
	_, _ = rand.Read(b[:])
	return prefix + hex.EncodeToString(b[:])
}

// PostgresDSN creates a fresh database on the test cluster named by
// THIQA_TEST_POSTGRES_DSN and returns a DSN for it; the database is dropped
// when the test ends.
func PostgresDSN(t testing.TB) string {
	t.Helper()
	admin := os.Getenv("THIQA_TEST_POSTGRES_DSN")
	if admin == "" {
		t.Fatal("testenv: THIQA_TEST_POSTGRES_DSN is not set: run the tests with `make test` (scripts/testenv.sh starts a throwaway PostgreSQL cluster)")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, admin)
	if err != nil {
		t.Fatalf("testenv: connecting to the PostgreSQL test cluster: %v", err)
	}
	defer conn.Close(context.Background())
	name := strings.ToLower(UniqueLabel("t_"))
	if _, err := conn.Exec(ctx, "CREATE DATABASE "+name); err != nil {
		t.Fatalf("testenv: creating database %s: %v", name, err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		c, err := pgx.Connect(ctx, admin)
		if err != nil {
			return
		}
		defer c.Close(context.Background())
		_, _ = c.Exec(ctx, "DROP DATABASE IF EXISTS "+name+" WITH (FORCE)")
	})
	u, err := url.Parse(admin)
	if err != nil {
		t.Fatalf("testenv: THIQA_TEST_POSTGRES_DSN: %v", err)
	}
	u.Path = "/" + name
	return u.String()
}

// Tool returns the path of an external program the test needs (openssl,
// pdfsig, qpdf, certutil), failing the test when it is not installed.
func Tool(t testing.TB, name string) string {
	t.Helper()
	p, err := exec.LookPath(name)
	if err != nil {
		t.Fatalf("testenv: %s is not installed (run `make test`, which installs it): %v", name, err)
	}
	return p
}

// SharedCorpus returns the path of the third-party test corpus
// (../shared/corpus next to the repository), failing when it is absent.
func SharedCorpus(t testing.TB) string {
	t.Helper()
	if d := os.Getenv("THIQA_CORPUS"); d != "" {
		return d
	}
	dir, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			c := filepath.Join(dir, "..", "shared", "corpus")
			if _, err := os.Stat(filepath.Join(c, "MANIFEST.txt")); err != nil {
				t.Fatalf("testenv: the shared corpus is not at %s: %v", c, err)
			}
			return c
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			t.Fatal("testenv: repository root (go.mod) not found")
		}
		dir = parent
	}
}
