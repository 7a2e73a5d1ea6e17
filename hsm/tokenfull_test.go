package hsm

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"

	"github.com/miekg/pkcs11"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/thiqa/thiqa/internal/outage"
	"github.com/thiqa/thiqa/internal/testenv"
)

// newTokenOnDisk initialises a SoftHSM token whose folder is on disk (its
// own SoftHSM configuration) and opens it with StorageDir set.
func newTokenOnDisk(t *testing.T, disk *testenv.SmallDisk, log *bytes.Buffer) (*Token, string) {
	t.Helper()
	tokdir := filepath.Join(disk.Dir, "tokens")
	if err := os.MkdirAll(tokdir, 0o700); err != nil {
		t.Fatal(err)
	}
	conf := filepath.Join(t.TempDir(), "softhsm2.conf")
	if err := os.WriteFile(conf, SoftHSMConf(tokdir, "test"), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Setenv("SOFTHSM2_CONF", conf)
	tok := newTestToken(t, Config{StorageDir: tokdir, Registerer: newRegistry(),
		Logger: slog.New(slog.NewTextHandler(log, &slog.HandlerOptions{Level: slog.LevelWarn}))})
	return tok, tokdir
}

// objectFiles counts the object files of the token folder.
func objectFiles(t *testing.T, tokdir string) int {
	t.Helper()
	n := 0
	err := filepath.WalkDir(tokdir, func(p string, d os.DirEntry, err error) error {
		if err == nil && strings.HasSuffix(p, ".object") && d.Name() != "token.object" {
			n++
		}
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return n
}

// TestGenerateKeyTokenFull fills the disk of a real SoftHSM token's folder
// (SoftHSM then answers CKR_FUNCTION_FAILED): the generation fails with
// ErrTokenFull and the disk's ENOSPC in its chain, marked as an outage,
// counted, logged once with what to do, and leaves no object; once space
// is freed the same label is generated. A read-only folder is the same.
func TestGenerateKeyTokenFull(t *testing.T) {
	disk := testenv.NewSmallDisk(t, 1<<20)
	var log bytes.Buffer
	tok, tokdir := newTokenOnDisk(t, disk, &log)
	ctx := context.Background()
	if _, err := tok.GenerateKey(ctx, "before", ECP256); err != nil {
		t.Fatal(err)
	}
	objects := objectFiles(t, tokdir)
	if objects == 0 {
		t.Fatal("the token is not in the folder on the small disk")
	}

	disk.Fill(t)
	for _, kt := range []KeyType{ECP256, RSA2048} {
		_, err := tok.GenerateKey(ctx, "k", kt)
		if !errors.Is(err, ErrTokenFull) || !outage.Is(err) || !errors.Is(err, syscall.ENOSPC) || !isRV(err, pkcs11.CKR_FUNCTION_FAILED) {
			t.Fatalf("%s on a full token folder: %v (token full %v, outage %v)", kt, err, errors.Is(err, ErrTokenFull), outage.Is(err))
		}
	}
	if got := testutil.ToFloat64(tok.m.tokenFull); got != 2 {
		t.Errorf("thiqa_hsm_token_full_total = %v, want 2", got)
	}
	if !strings.Contains(log.String(), "free space on the token") {
		t.Errorf("the log does not say what to do:\n%s", log.String())
	}
	if _, err := tok.FindKey(ctx, "k"); !errors.Is(err, ErrKeyNotFound) {
		t.Errorf("FindKey after the failed generation: %v", err)
	}
	if n := objectFiles(t, tokdir); n != objects {
		t.Errorf("%d object files after the failed generations, %d before", n, objects)
	}

	disk.Free(t)
	sg, err := tok.GenerateKey(ctx, "k", ECP256)
	if err != nil {
		t.Fatalf("after space was freed: %v", err)
	}
	mustSignVerify(t, sg)

	// A folder turned read-only: the same, with EROFS.
	if err := syscall.Mount("", disk.Dir, "", syscall.MS_REMOUNT|syscall.MS_RDONLY, ""); err != nil {
		t.Fatalf("remounting read-only: %v", err)
	}
	_, err = tok.GenerateKey(ctx, "ro", ECP256)
	if rerr := syscall.Mount("", disk.Dir, "", syscall.MS_REMOUNT, ""); rerr != nil {
		t.Fatalf("remounting read-write: %v", rerr)
	}
	if !errors.Is(err, ErrTokenFull) || !outage.Is(err) || !errors.Is(err, syscall.EROFS) {
		t.Fatalf("on a read-only token folder: %v", err)
	}
	if _, err := tok.GenerateKey(ctx, "ro", ECP256); err != nil {
		t.Fatalf("after the folder is writable again: %v", err)
	}
}

// TestTokenFullClassification: which failures of the call that creates a
// key pair say the token cannot store it.
func TestTokenFullClassification(t *testing.T) {
	dir := t.TempDir()
	for _, c := range []struct {
		name       string
		rv         uint
		storageDir string
		full       bool
	}{
		{"device-memory", pkcs11.CKR_DEVICE_MEMORY, "", true},
		// A network HSM's device fault is an outage, not a full token:
		// ThiqaHSMTokenFull would send the operator to free space.
		{"device-error", pkcs11.CKR_DEVICE_ERROR, "", false},
		{"device-error-folder-with-space", pkcs11.CKR_DEVICE_ERROR, dir, false},
		{"function-failed-no-folder", pkcs11.CKR_FUNCTION_FAILED, "", false},
		{"function-failed-folder-with-space", pkcs11.CKR_FUNCTION_FAILED, dir, false},
		{"general-error-folder-with-space", pkcs11.CKR_GENERAL_ERROR, dir, false},
		{"mechanism-invalid", pkcs11.CKR_MECHANISM_INVALID, dir, false},
	} {
		tok := &Token{storageDir: c.storageDir}
		full := tok.tokenFull(pkcs11.Error(c.rv))
		if (full != nil) != c.full || (full != nil && !errors.Is(full, ErrTokenFull)) {
			t.Errorf("%s: %v, want full %v", c.name, full, c.full)
		}
	}
	if ents, _ := os.ReadDir(dir); len(ents) != 0 {
		t.Errorf("the probe left %d files", len(ents))
	}
}

// TestTokenFullProbeErrors: only a disk without room or that takes no
// writes makes a full token; an I/O error is a failing disk, which
// freeing space does not cure (docs/operations.md says so).
func TestTokenFullProbeErrors(t *testing.T) {
	for _, c := range []struct {
		err  error
		full bool
	}{
		{syscall.ENOSPC, true},
		{syscall.EDQUOT, true},
		{syscall.EROFS, true},
		{syscall.EIO, false},
		{syscall.EACCES, false},
		{nil, false},
	} {
		var err error
		if c.err != nil {
			err = &os.PathError{Op: "write", Path: "probe", Err: c.err}
		}
		if got := cannotStore(err); got != c.full {
			t.Errorf("%v: full %v, want %v", c.err, got, c.full)
		}
	}
}

// TestProbeLeavesNothing: many probes at once on a full token folder (as
// many failed generations would run them) each fail with ENOSPC and
// leave no file; a probe file left by a process that stopped between
// writing and removing it does not disturb SoftHSM, which looks for
// tokens only in the folder's sub-folders: the token opens, generates and
// finds its keys.
func TestProbeLeavesNothing(t *testing.T) {
	disk := testenv.NewSmallDisk(t, 1<<20)
	var log bytes.Buffer
	tokdir := filepath.Join(disk.Dir, "tokens")
	if err := os.MkdirAll(tokdir, 0o700); err != nil {
		t.Fatal(err)
	}
	stray := filepath.Join(tokdir, ".thiqa-space-probe-left")
	if err := os.WriteFile(stray, make([]byte, probeSize), 0o600); err != nil {
		t.Fatal(err)
	}
	tok, _ := newTokenOnDisk(t, disk, &log)
	ctx := context.Background()
	if _, err := tok.GenerateKey(ctx, "with-stray", ECP256); err != nil {
		t.Fatalf("generating beside a stray probe file: %v", err)
	}
	if _, err := tok.FindKey(ctx, "with-stray"); err != nil {
		t.Fatalf("finding the key beside a stray probe file: %v", err)
	}
	entries := func() []string {
		ents, err := os.ReadDir(tokdir)
		if err != nil {
			t.Fatal(err)
		}
		var names []string
		for _, e := range ents {
			names = append(names, e.Name())
		}
		return names
	}
	before := entries()

	disk.Fill(t)
	var wg sync.WaitGroup
	errs := make([]error, 32)
	for i := range errs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs[i] = probeStorage(tokdir)
		}()
	}
	wg.Wait()
	for i, err := range errs {
		if !cannotStore(err) {
			t.Fatalf("probe %d on a full folder: %v", i, err)
		}
	}
	if after := entries(); !slices.Equal(after, before) {
		t.Fatalf("the token folder holds %v after the probes, %v before", after, before)
	}
}

// TestGenerateKeyTokenNearlyFull: a token folder with a few KiB free,
// enough for the 4 KiB probe but not for a key pair's objects, is a full
// token too (503 and what to free), not a 500.
func TestGenerateKeyTokenNearlyFull(t *testing.T) {
	disk := testenv.NewSmallDisk(t, 1<<20)
	var log bytes.Buffer
	tok, _ := newTokenOnDisk(t, disk, &log)
	ctx := context.Background()
	if _, err := tok.GenerateKey(ctx, "before", ECP256); err != nil {
		t.Fatal(err)
	}
	disk.Fill(t)
	// Give back 4 KiB at a time until a generation succeeds; each one
	// that fails on the way must say the token is full, also when the
	// probe fits.
	fitted := false
	for step := 1; step <= 16; step++ {
		disk.FreeSome(t, 4<<10)
		fits := probeStorage(tok.storageDir) == nil
		_, err := tok.GenerateKey(ctx, fmt.Sprintf("k%d", step), RSA2048)
		if err == nil {
			break
		}
		if !errors.Is(err, ErrTokenFull) || !outage.Is(err) || !errors.Is(err, syscall.ENOSPC) {
			t.Fatalf("generation with about %d KiB free (the probe fits: %v): %v; want a full token", 4*step, fits, err)
		}
		fitted = fitted || fits
	}
	if !fitted {
		t.Fatal("no generation failed while the probe fitted: the test proves nothing")
	}
}
