package backup_test

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"context"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/thiqa/thiqa/backup"
	"github.com/thiqa/thiqa/store/storetest"
)

// TestBackupAfterAnInterruptedOne runs a backup over what a killed one
// leaves next to --out: OUT.partial (the archive being written; never a
// finished backup) and the staging folder. The re-run replaces them and
// completes; a partial file another backup is writing is refused, naming
// it; and a finished backup is never touched, even when a kill between
// linking it into place and removing the partial name left both names.
func TestBackupAfterAnInterruptedOne(t *testing.T) {
	ctx := context.Background()
	src := newSource(t, storetest.Dialects()[0])
	create := func(out string) error {
		_, err := backup.Create(ctx, src.options(out))
		return err
	}

	// A kill while writing: a torn OUT.partial and the staging folder stay.
	dir := t.TempDir()
	out := filepath.Join(dir, "backup.tar.gz")
	writeTestFile(t, out+".partial", "the first megabytes of an archive")
	writeTestFile(t, filepath.Join(dir, ".thiqa-backup-backup.tar.gz", "store", "thiqa.db"), "a copy of the database")
	if err := create(out); err != nil {
		t.Fatalf("a backup after an interrupted one: %v", err)
	}
	checkArchive(t, out)
	if entries, err := os.ReadDir(dir); err != nil || len(entries) != 1 {
		t.Errorf("the backup's folder holds %v (%v), want the archive alone", entries, err)
	}

	// Another backup to the same file is writing OUT.partial: refused, its file untouched.
	busy := filepath.Join(t.TempDir(), "busy.tar.gz")
	writeTestFile(t, busy+".partial", "being written")
	f, err := os.Open(busy + ".partial")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		t.Fatal(err)
	}
	err = create(busy)
	if err == nil || !strings.Contains(err.Error(), busy+".partial is being written by another thiqa backup") {
		t.Fatalf("a backup beside a running one: %v", err)
	}
	if raw, _ := os.ReadFile(busy + ".partial"); string(raw) != "being written" {
		t.Errorf("the running backup's file was changed: %q", raw)
	}
	if _, err := os.Stat(busy); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("a refused backup wrote %s", busy)
	}

	// A kill after the archive was linked into place: OUT.partial is the
	// finished backup under a second name. Nothing may write through it.
	want, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.Link(out, out+".partial"); err != nil {
		t.Fatal(err)
	}
	if err := create(out); err == nil || !strings.Contains(err.Error(), "nothing was overwritten") {
		t.Fatalf("a backup onto a finished one: %v", err)
	}
	if got, err := os.ReadFile(out); err != nil || !bytes.Equal(got, want) {
		t.Fatalf("the finished backup was changed (%v)", err)
	}
	checkArchive(t, out)
}

// checkArchive reads the archive at p whole: a gzip-compressed tar whose
// first entry is the manifest.
func checkArchive(t *testing.T, p string) {
	t.Helper()
	f, err := os.Open(p)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	gz, err := gzip.NewReader(f)
	if err != nil {
		t.Fatalf("%s: %v", p, err)
	}
	tr := tar.NewReader(gz)
	var names []string
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatalf("%s: %v", p, err)
		}
		if _, err := io.Copy(io.Discard, tr); err != nil {
			t.Fatalf("%s: %v", p, err)
		}
		names = append(names, h.Name)
	}
	if len(names) < 3 || !strings.HasPrefix(names[0], "manifest") {
		t.Fatalf("%s holds %q", p, names)
	}
}
