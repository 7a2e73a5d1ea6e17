package backup

import (
	"bufio"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"syscall"

	"github.com/thiqa/thiqa/internal/atomicfile"
)

// partialArchive is the archive a backup is writing, OUT.partial, held
// under an exclusive flock for as long as the backup runs. The lock tells
// a file left by an interrupted backup (nobody holds it: it is replaced)
// from one another backup is writing (refused). The file is only ever
// ours and never the finished backup: that appears at OUT, by a link,
// once the archive is complete and synced.
type partialArchive struct {
	out, path string
	f         *os.File
}

// claimPartial takes OUT.partial for the backup to out, replacing what an
// interrupted backup left there and refusing one another backup holds.
func claimPartial(out string) (*partialArchive, error) {
	p := out + ".partial"
	// A backup that finishes between our open and our lock removes the
	// name; a few tries are then enough to settle on a file of our own.
	for range 3 {
		f, err := os.OpenFile(p, os.O_RDWR|os.O_CREATE, 0o600)
		if err != nil {
			return nil, fmt.Errorf("writing the backup: %w", err)
		}
		if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
			f.Close()
			if errors.Is(err, syscall.EWOULDBLOCK) {
				return nil, fmt.Errorf("%s is being written by another thiqa backup to %s: let it finish or stop it, or choose another --out (nothing was done)", p, out)
			}
			return nil, fmt.Errorf("locking %s: %w", p, err)
		}
		held, err := f.Stat()
		if err != nil {
			f.Close()
			return nil, fmt.Errorf("writing the backup: %w", err)
		}
		named, err := os.Lstat(p)
		switch {
		case err == nil && os.SameFile(held, named) && links(held) == 1:
			// Ours: empty, or left by an interrupted backup.
			if err := f.Truncate(0); err != nil {
				f.Close()
				return nil, fmt.Errorf("replacing %s, left by an interrupted backup: %w", p, err)
			}
			return &partialArchive{out: out, path: p, f: f}, nil
		case err == nil && os.SameFile(held, named):
			// A backup killed after linking its archive into place and
			// before removing this name: the file is a finished backup.
			// Only the extra name goes.
			if err := os.Remove(p); err != nil {
				f.Close()
				return nil, fmt.Errorf("%s is a second name of a finished backup and cannot be removed (remove it, never the backup): %w", p, err)
			}
		}
		f.Close()
	}
	return nil, fmt.Errorf("%s keeps changing under this backup: is another thiqa backup writing to %s? (nothing was done)", p, out)
}

// links returns the number of names a file has (1 where unknown).
func links(fi os.FileInfo) uint64 {
	if st, ok := fi.Sys().(*syscall.Stat_t); ok {
		return uint64(st.Nlink)
	}
	return 1
}

// staging returns the folder, next to out, where the backup copies what
// goes into the archive: .thiqa-backup-NAME, emptied of what an
// interrupted backup to out left (copies of the data folder and the
// database, which must not linger on the backup disk).
func (a *partialArchive) staging() (string, error) {
	dir := filepath.Join(filepath.Dir(a.out), ".thiqa-backup-"+filepath.Base(a.out))
	if err := os.RemoveAll(dir); err != nil {
		return "", fmt.Errorf("removing %s, left by an interrupted backup: %w", dir, err)
	}
	if err := os.Mkdir(dir, 0o700); err != nil {
		return "", fmt.Errorf("creating a staging folder next to --out: %w", err)
	}
	return dir, nil
}

// write writes the archive into the partial file and links it to out only
// when complete and synced, never replacing an existing file.
func (a *partialArchive) write(raw, sig []byte, m *Manifest, staged map[string]string) error {
	w := bufio.NewWriterSize(a.f, 1<<20)
	err := writeArchive(w, raw, sig, m, staged)
	if err == nil {
		err = w.Flush()
	}
	if err == nil {
		err = a.f.Sync()
	}
	if err != nil {
		return fmt.Errorf("writing the backup: %w", err)
	}
	if err := os.Link(a.path, a.out); err != nil {
		return fmt.Errorf("writing the backup (nothing was overwritten): %w", err)
	}
	if err := atomicfile.SyncDir(filepath.Dir(a.out)); err != nil {
		return fmt.Errorf("writing the backup: %w", err)
	}
	return nil
}

// release removes the partial file's name, then lets go of its lock: a
// backup waiting for the lock finds the name gone (or another file under
// it) and never writes through the finished archive.
func (a *partialArchive) release() {
	os.Remove(a.path)
	a.f.Close()
}
