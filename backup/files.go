package backup

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"syscall"
)

// ErrFolderInUse is returned (wrapped) when a data folder is locked by a
// process that must not run beside the caller (serve beside restore).
var ErrFolderInUse = errors.New("the data folder is in use")

// LockFolder takes a lock on the data folder itself (flock on its
// directory): shared for `thiqa serve`, which holds it while serving (any
// number of servers may share a folder), and for the operator commands
// that write to the folder's store while they run; exclusive for a restore, for
// `thiqa audit compact` and `thiqa ca root retire-online`, which so refuse
// a live folder; it never waits. It returns the function releasing
// it.
func LockFolder(dir string, exclusive bool) (func(), error) {
	f, err := os.Open(dir)
	if err != nil {
		return nil, fmt.Errorf("opening the data folder to lock it: %w", err)
	}
	how := syscall.LOCK_SH
	if exclusive {
		how = syscall.LOCK_EX
	}
	if err := syscall.Flock(int(f.Fd()), how|syscall.LOCK_NB); err != nil {
		f.Close()
		if errors.Is(err, syscall.EWOULDBLOCK) {
			if exclusive {
				return nil, fmt.Errorf("%w: %s is locked by a running thiqa serve or an operator command writing to it (thiqa issue, revoke, enrol, seal, …), or by a restore, thiqa audit compact or thiqa ca root retire-online: stop it first", ErrFolderInUse, dir)
			}
			return nil, fmt.Errorf("%w: %s is being restored, compacted or its root retired (thiqa restore, thiqa audit compact or thiqa ca root retire-online holds it): start again once it is done", ErrFolderInUse, dir)
		}
		return nil, fmt.Errorf("locking the data folder %s: %w", dir, err)
	}
	return func() { f.Close() }, nil
}

// walkedInto reports whether the walk of the data folder dir reaches p:
// p is inside dir once the symbolic links on its way are followed, and no
// folder between dir and p is a link (the walk copies a link to a file as
// the file, but does not enter a linked folder, which a Named path under
// it would be lost with). A path that does not exist yet is taken as far
// as it exists.
func walkedInto(dir, p string) bool {
	if !within(dir, p) {
		return within(realPath(dir), realPath(p))
	}
	for q := filepath.Dir(p); within(dir, q) && q != dir; q = filepath.Dir(q) {
		if fi, err := os.Lstat(q); err == nil && fi.Mode()&os.ModeSymlink != 0 {
			return false
		}
	}
	if fi, err := os.Lstat(p); err == nil && fi.Mode()&os.ModeSymlink != 0 {
		st, err := os.Stat(p)
		return err == nil && st.Mode().IsRegular()
	}
	return true
}

// realPath is p with the symbolic links of its longest existing prefix
// followed; p itself when none of it can be resolved.
func realPath(p string) string {
	rest := ""
	for q := p; ; q = filepath.Dir(q) {
		if r, err := filepath.EvalSymlinks(q); err == nil {
			return filepath.Join(r, rest)
		}
		if filepath.Dir(q) == q {
			return p
		}
		rest = filepath.Join(filepath.Base(q), rest)
	}
}

// within reports whether p is dir or inside it.
func within(dir, p string) bool {
	rel, err := filepath.Rel(dir, p)
	return err == nil && rel != ".." && !strings.HasPrefix(rel, ".."+string(filepath.Separator))
}

// copyFile copies src to dst (created, with mode perm).
func copyFile(src, dst string, perm os.FileMode) error {
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	return writeNew(dst, in, perm)
}

// writeNew creates dst (and its folder) with r's content and syncs it.
func writeNew(dst string, r io.Reader, perm os.FileMode) error {
	if err := os.MkdirAll(filepath.Dir(dst), 0o700); err != nil {
		return err
	}
	out, err := os.OpenFile(dst, os.O_WRONLY|os.O_CREATE|os.O_EXCL, perm)
	if err != nil {
		return err
	}
	if _, err := io.Copy(out, r); err != nil {
		out.Close()
		return fmt.Errorf("writing %s: %w", dst, err)
	}
	if err := out.Sync(); err != nil {
		out.Close()
		return fmt.Errorf("writing %s: %w", dst, err)
	}
	return out.Close()
}

// copyCheckpointFile copies the checkpoint file under a shared flock (the
// writers append under an exclusive one), keeping whole lines only.
func copyCheckpointFile(src, dst string) error {
	f, err := os.Open(src)
	if err != nil {
		return err
	}
	defer f.Close()
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_SH); err != nil {
		return fmt.Errorf("locking %s: %w", src, err)
	}
	raw, err := io.ReadAll(bufio.NewReader(f))
	if err != nil {
		return fmt.Errorf("reading %s: %w", src, err)
	}
	if i := bytes.LastIndexByte(raw, '\n'); i+1 < len(raw) {
		raw = raw[:i+1] // an incomplete last line (a crash while writing) is left out
	}
	return writeNew(dst, bytes.NewReader(raw), 0o600)
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
