package main

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/thiqa/thiqa/cmd/thiqa/internal/config"
)

// errTargetNotEmpty is returned (wrapped) when the folder or database a
// backup is restored into already holds data.
var errTargetNotEmpty = errors.New("the restore target is not empty")

// restoreTarget is the data folder a backup is restored into.
type restoreTarget struct {
	dir    string // absolute
	exists bool
	// release drops the exclusive lock held on an existing folder.
	release func()
}

// openRestoreTarget checks the folder a backup goes to: it may not exist
// yet (its parent must); an existing one is locked exclusively, which
// fails while a `thiqa serve` runs on it. Its contents are checked later,
// against the configuration (checkTargetContents).
func openRestoreTarget(dir string) (*restoreTarget, error) {
	t := &restoreTarget{dir: dir, release: func() {}}
	info, err := os.Lstat(dir)
	switch {
	case errors.Is(err, os.ErrNotExist):
		if _, err := os.Stat(filepath.Dir(dir)); err != nil {
			return nil, fmt.Errorf("the folder that is to hold %s: %w", dir, err)
		}
		return t, nil
	case err != nil:
		return nil, fmt.Errorf("restore target: %w", err)
	case !info.IsDir():
		return nil, fmt.Errorf("%w: %s is not a folder", errTargetNotEmpty, dir)
	}
	release, err := lockDataFolder(dir, true)
	if err != nil {
		return nil, err
	}
	t.exists, t.release = true, release
	return t, nil
}

// hsmMaterial returns the top-level names in the data folder that may be
// there before a restore: the folder's own configuration, and what the
// HSM's backup procedure puts back (the SoftHSM token folder, its
// configuration, the PIN files' folders).
func hsmMaterial(cfg *config.Config, dir string) []string {
	names := []string{config.FileName}
	add := func(p string) {
		if p == "" {
			return
		}
		if rel, err := filepath.Rel(dir, cfg.Resolve(p)); err == nil && !strings.HasPrefix(rel, "..") {
			if top := strings.Split(filepath.ToSlash(rel), "/")[0]; !slices.Contains(names, top) {
				names = append(names, top)
			}
		}
	}
	if s := cfg.HSM.SoftHSM; s != nil {
		add(s.TokenDir)
		add(s.Conf)
		add(s.SOPINFile)
	}
	add(cfg.HSM.PINFile)
	return names
}

// checkTargetContents refuses a folder holding anything but HSM material
// and a configuration: a data folder in use, or another deployment's.
func (t *restoreTarget) checkTargetContents(cfg *config.Config) error {
	if !t.exists {
		return nil
	}
	entries, err := os.ReadDir(t.dir)
	if err != nil {
		return fmt.Errorf("reading %s: %w", t.dir, err)
	}
	allowed := hsmMaterial(cfg, t.dir)
	var other []string
	for _, e := range entries {
		if !slices.Contains(allowed, e.Name()) {
			other = append(other, e.Name())
		}
	}
	if len(other) > 0 {
		return fmt.Errorf("%w: %s holds %s; a restore needs a fresh folder that holds at most the token and PIN files (%s) and thiqa.yaml: restore into a new folder, or move those away (nothing was changed)",
			errTargetNotEmpty, t.dir, strings.Join(other, ", "), strings.Join(allowed[1:], ", "))
	}
	return nil
}

// planMove lists the files under from (relative names) to be moved into
// to, and refuses when one exists there with other content; identical
// files already there (a PIN folder copied whole) are left alone.
func planMove(from, to string) ([]string, error) {
	var names []string
	err := filepath.WalkDir(from, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		rel, err := filepath.Rel(from, p)
		if err != nil {
			return err
		}
		dst := filepath.Join(to, rel)
		if _, err := os.Lstat(dst); err == nil {
			same, err := sameContent(p, dst)
			if err != nil {
				return err
			}
			if !same {
				return fmt.Errorf("%w: %s exists with other content than the backup's (nothing was changed)", errTargetNotEmpty, dst)
			}
			return nil
		}
		names = append(names, rel)
		return nil
	})
	return names, err
}

// sameContent reports whether two files hold the same bytes.
func sameContent(a, b string) (bool, error) {
	x, err := os.ReadFile(a)
	if err != nil {
		return false, err
	}
	y, err := os.ReadFile(b)
	if err != nil {
		return false, err
	}
	return bytes.Equal(x, y), nil
}

// moveFiles renames each planned file from from into to, creating
// folders (0700) as needed; on a failure it moves back what it moved.
func moveFiles(from, to string, names []string) error {
	var moved []string
	for _, rel := range names {
		src, dst := filepath.Join(from, rel), filepath.Join(to, rel)
		if err := os.MkdirAll(filepath.Dir(dst), 0o700); err != nil {
			undoMoves(from, to, moved)
			return fmt.Errorf("creating the folder of %s: %w", dst, err)
		}
		if err := moveFile(src, dst); err != nil {
			undoMoves(from, to, moved)
			return err
		}
		moved = append(moved, rel)
	}
	return nil
}

// undoMoves moves files back after a failed moveFiles.
func undoMoves(from, to string, moved []string) {
	for _, rel := range moved {
		_ = os.Rename(filepath.Join(to, rel), filepath.Join(from, rel))
	}
}

// moveFile renames src to dst, which must not exist; across file systems
// it copies and removes.
func moveFile(src, dst string) error {
	if _, err := os.Lstat(dst); err == nil {
		return fmt.Errorf("%w: %s appeared during the restore", errTargetNotEmpty, dst)
	}
	if err := os.Rename(src, dst); err == nil {
		return nil
	}
	info, err := os.Stat(src)
	if err != nil {
		return err
	}
	if err := copyFile(src, dst, info.Mode().Perm()); err != nil {
		return fmt.Errorf("moving %s to %s: %w", src, dst, err)
	}
	return os.Remove(src)
}
