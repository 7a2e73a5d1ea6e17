// Package atomicfile writes files whole: Write replaces a file so that a
// reader sees the old content or the new, never a torn write; WriteNew
// creates a file that must not exist yet and leaves nothing behind when it
// fails. The services write their certificate files (TSA unit, OCSP
// responders) and the CLI its outputs through it. Created undoes what a
// preparation of a folder in several steps created when a step fails.
package atomicfile

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
)

// Write replaces path with data: a temporary file in the same folder,
// synced, given perm, then renamed over path.
func Write(path string, data []byte, perm os.FileMode) error {
	tmp, err := os.CreateTemp(filepath.Dir(path), ".tmp-*")
	if err != nil {
		return fmt.Errorf("writing %s: %w", path, err)
	}
	defer os.Remove(tmp.Name())
	if _, err := tmp.Write(data); err != nil {
		tmp.Close()
		return fmt.Errorf("writing %s: %w", path, err)
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return fmt.Errorf("writing %s: %w", path, err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("writing %s: %w", path, err)
	}
	if err := os.Chmod(tmp.Name(), perm); err != nil {
		return fmt.Errorf("writing %s: %w", path, err)
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		return fmt.Errorf("replacing %s: %w", path, err)
	}
	syncDir(filepath.Dir(path))
	return nil
}

// WriteNew creates path with data, failing with an error wrapping
// os.ErrExist when it is already there (nothing is ever replaced). The
// data goes to a temporary file in the same folder, synced, which is then
// linked as path: a crash or a full disk leaves either no file or the whole
// of it, never a torn one that a run again would keep. Where the file
// system has no hard links (a FAT stick), path is created and written in
// place; a failed write still leaves no file behind.
func WriteNew(path string, data []byte, perm os.FileMode) error {
	return writeNew(path, data, perm, os.Link)
}

// writeNew is WriteNew with the step that makes the file appear (link,
// which fails when the destination exists) given.
func writeNew(path string, data []byte, perm os.FileMode, link func(oldname, newname string) error) error {
	if _, err := os.Lstat(path); err == nil {
		return &os.PathError{Op: "create", Path: path, Err: os.ErrExist}
	}
	tmp, err := os.CreateTemp(filepath.Dir(path), ".tmp-*")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name())
	if err := writeSynced(tmp, data, perm); err != nil {
		return fmt.Errorf("writing %s: %w", path, err)
	}
	err = link(tmp.Name(), path)
	switch {
	case err == nil:
		syncDir(filepath.Dir(path))
		return nil
	case errors.Is(err, os.ErrExist):
		return err
	}
	// No hard links here: create the file in place.
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, perm)
	if err != nil {
		return err
	}
	if err := writeSynced(f, data, perm); err != nil {
		os.Remove(path)
		return fmt.Errorf("writing %s: %w", path, err)
	}
	syncDir(filepath.Dir(path))
	return nil
}

// writeSynced writes data to f, syncs it, gives it perm and closes it.
func writeSynced(f *os.File, data []byte, perm os.FileMode) error {
	_, err := f.Write(data)
	if err == nil {
		err = f.Sync()
	}
	if err == nil {
		err = f.Chmod(perm)
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	return err
}

// SyncDir syncs a folder so that a file just linked or renamed in it
// survives a power loss. Not every file system can; this package's
// writers call it as a best effort and ignore its error.
func SyncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}

// syncDir is SyncDir as a best effort.
func syncDir(dir string) { _ = SyncDir(dir) }

// WriteWith replaces path with what write writes: into a temporary file in
// the same folder named after pattern (as os.CreateTemp names it), renamed
// over path only when write and closing the file succeed. A failure leaves
// no temporary file behind; write's error is returned as it is.
func WriteWith(path, pattern string, write func(w io.Writer) error) error {
	tmp, err := os.CreateTemp(filepath.Dir(path), pattern)
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name())
	if err := write(tmp); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("writing %s: %w", path, err)
	}
	return os.Rename(tmp.Name(), path)
}
