package testenv

import (
	"errors"
	"os"
	"path/filepath"
	"strconv"
	"syscall"
	"testing"
)

// SmallDisk is a file system of its own, small enough to fill: a tmpfs
// mounted for one test.
type SmallDisk struct {
	// Dir is where it is mounted.
	Dir    string
	filler string
}

// NewSmallDisk mounts a tmpfs of size bytes on a new folder and unmounts
// it when the test ends. Mounting needs root: as any other user the test
// is skipped, saying so; as root (CI, make test) a failed mount fails it.
func NewSmallDisk(t testing.TB, size int64) *SmallDisk {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("testenv: a full disk needs a tmpfs of its own, and mounting one needs root: run the test as root (CI does)")
	}
	dir := t.TempDir()
	if err := syscall.Mount("tmpfs", dir, "tmpfs", syscall.MS_NOSUID|syscall.MS_NODEV, "size="+strconv.FormatInt(size, 10)+",mode=0700"); err != nil {
		t.Fatalf("testenv: mounting a tmpfs on %s as root: %v", dir, err)
	}
	t.Cleanup(func() {
		if err := syscall.Unmount(dir, syscall.MNT_DETACH); err != nil {
			t.Errorf("testenv: unmounting %s: %v", dir, err)
		}
	})
	return &SmallDisk{Dir: dir, filler: filepath.Join(dir, ".filler")}
}

// Fill writes a file until no byte is left on the disk.
func (d *SmallDisk) Fill(t testing.TB) {
	t.Helper()
	f, err := os.OpenFile(d.filler, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o600)
	if err != nil {
		t.Fatalf("testenv: filling %s: %v", d.Dir, err)
	}
	defer f.Close()
	for _, n := range []int{1 << 20, 4096, 1} {
		buf := make([]byte, n)
		for {
			if _, err := f.Write(buf); err != nil {
				if !errors.Is(err, syscall.ENOSPC) {
					t.Fatalf("testenv: filling %s: %v", d.Dir, err)
				}
				break
			}
		}
	}
}

// Free removes what Fill wrote.
func (d *SmallDisk) Free(t testing.TB) {
	t.Helper()
	if err := os.Remove(d.filler); err != nil && !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("testenv: freeing %s: %v", d.Dir, err)
	}
}

// FreeSome gives back n bytes of what Fill wrote: a disk with a little
// room, enough for a small write but not for much.
func (d *SmallDisk) FreeSome(t testing.TB, n int64) {
	t.Helper()
	st, err := os.Stat(d.filler)
	if err != nil {
		t.Fatalf("testenv: freeing %d bytes of %s: %v", n, d.Dir, err)
	}
	if err := os.Truncate(d.filler, max(st.Size()-n, 0)); err != nil {
		t.Fatalf("testenv: freeing %d bytes of %s: %v", n, d.Dir, err)
	}
}
