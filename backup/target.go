package backup

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
)

// ErrTargetNotEmpty is returned (wrapped) when the folder or database a
// backup is restored into already holds data.
var ErrTargetNotEmpty = errors.New("the restore target is not empty")

// target is the data folder a backup is restored into.
type target struct {
	dir    string // absolute
	exists bool
	// staging is the name, inside an existing dir, of the restore's
	// staging folder (makeStaging); checkContents does not count it.
	staging string
	// release drops the exclusive lock held on an existing folder.
	release func()
}

// openTarget checks the folder a backup goes to: it may not exist yet (its
// parent must); an existing one is locked exclusively, which fails while
// a `thiqa serve` runs on it. Its contents are checked later, against the
// configuration (checkContents).
func openTarget(dir string) (*target, error) {
	t := &target{dir: dir, release: func() {}}
	info, err := os.Lstat(dir)
	switch {
	case errors.Is(err, os.ErrNotExist):
		if _, err := os.Stat(filepath.Dir(dir)); err != nil {
			return nil, fmt.Errorf("the folder that is to hold %s: %w", dir, err)
		}
		return t, nil
	case err != nil:
		return nil, fmt.Errorf("restore target: %w", err)
	case info.Mode()&fs.ModeSymlink != 0:
		// A link to the data folder (/var/lib/thiqa -> /srv/thiqa, as
		// thiqa backup follows it): the folder is where it points. Every
		// path keeps naming it through the link, as the configuration
		// does, and the files are renamed through it into the folder.
		if info, err = os.Stat(dir); err != nil {
			return nil, fmt.Errorf("restore target: %s is a link to a folder that does not exist (create the folder it names first): %w", dir, err)
		}
		if !info.IsDir() {
			return nil, fmt.Errorf("%w: %s is a link to something that is not a folder", ErrTargetNotEmpty, dir)
		}
	}
	if !info.IsDir() {
		return nil, fmt.Errorf("%w: %s is not a folder", ErrTargetNotEmpty, dir)
	}
	release, err := LockFolder(dir, true)
	if err != nil {
		return nil, err
	}
	t.exists, t.release = true, release
	return t, nil
}

// stagingPrefix begins the name of the staging folder that a restore makes
// inside an existing data folder.
const stagingPrefix = ".restore-"

// makeStaging creates the folder the archive is unpacked into, on the data
// folder's file system so that its files are renamed into place. An
// existing data folder holds it: the user that owns the folder need not be
// able to write to its parent (the Debian package's /var/lib/thiqa is
// thiqa's, /var/lib is root's). A folder that does not exist yet is
// created by the restore, so its parent must be writable anyway: the
// staging folder goes there, and becomes the data folder.
//
// In an existing folder, the staging folders an interrupted restore left
// (copies of a backup's data and database, which count as content and
// would refuse the folder) are removed first: the exclusive lock on the
// folder says no other restore is using them.
func (t *target) makeStaging() (string, error) {
	if t.exists {
		if err := t.removeStaleStaging(); err != nil {
			return "", err
		}
		dir, err := os.MkdirTemp(t.dir, stagingPrefix)
		if err != nil {
			return "", fmt.Errorf("creating a staging folder in %s: %w", t.dir, err)
		}
		t.staging = filepath.Base(dir)
		return dir, nil
	}
	dir, err := os.MkdirTemp(filepath.Dir(t.dir), "."+filepath.Base(t.dir)+stagingPrefix)
	if err != nil {
		return "", fmt.Errorf("creating a staging folder next to %s: %w", t.dir, err)
	}
	return dir, nil
}

// removeStaleStaging removes the staging folders of interrupted restores
// from the (locked) data folder.
func (t *target) removeStaleStaging() error {
	entries, err := os.ReadDir(t.dir)
	if err != nil {
		return fmt.Errorf("reading %s: %w", t.dir, err)
	}
	for _, e := range entries {
		if e.IsDir() && strings.HasPrefix(e.Name(), stagingPrefix) {
			p := filepath.Join(t.dir, e.Name())
			if err := os.RemoveAll(p); err != nil {
				return fmt.Errorf("removing %s, left by an interrupted restore: %w", p, err)
			}
		}
	}
	return nil
}

// TopLevel returns the names, directly in dir, of the paths that are
// inside it (each once, in order): what an existing data folder may hold
// before a restore (Layout.HSMMaterial).
func TopLevel(dir string, paths ...string) []string {
	var names []string
	for _, p := range paths {
		if p == "" {
			continue
		}
		if rel, err := filepath.Rel(dir, p); err == nil && !strings.HasPrefix(rel, "..") {
			if top := strings.Split(filepath.ToSlash(rel), "/")[0]; !slices.Contains(names, top) {
				names = append(names, top)
			}
		}
	}
	return names
}

// checkContents refuses a folder holding anything but HSM material and a
// configuration: a data folder in use, or another deployment's.
func (t *target) checkContents(configFile string, hsmMaterial []string) error {
	if !t.exists {
		return nil
	}
	entries, err := os.ReadDir(t.dir)
	if err != nil {
		return fmt.Errorf("reading %s: %w", t.dir, err)
	}
	allowed := []string{configFile}
	for _, n := range hsmMaterial {
		if !slices.Contains(allowed, n) {
			allowed = append(allowed, n)
		}
	}
	var other []string
	for _, e := range entries {
		if t.staging != "" && e.Name() == t.staging {
			continue
		}
		if !slices.Contains(allowed, e.Name()) {
			other = append(other, e.Name())
		}
	}
	if len(other) > 0 {
		return fmt.Errorf("%w: %s holds %s; a restore needs a fresh folder that holds at most the token and PIN files (%s) and %s: restore into a new folder, or move those away (nothing was changed)",
			ErrTargetNotEmpty, t.dir, strings.Join(other, ", "), strings.Join(allowed[1:], ", "), configFile)
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
				return fmt.Errorf("%w: %s exists with other content than the backup's (nothing was changed)", ErrTargetNotEmpty, dst)
			}
			return nil
		}
		names = append(names, rel)
		return nil
	})
	return names, err
}

// moveFiles renames each planned file from from into to, creating
// folders (0700) as needed; on a failure it moves back what it moved and
// removes the folders it created, so that to is as it was.
func moveFiles(from, to string, names []string) error {
	var moved, made []string
	for _, rel := range names {
		src, dst := filepath.Join(from, rel), filepath.Join(to, rel)
		if err := makeFolders(to, filepath.Dir(rel), &made); err != nil {
			undoMoves(from, to, moved, made)
			return fmt.Errorf("creating the folder of %s: %w", dst, err)
		}
		if err := moveFile(src, dst); err != nil {
			undoMoves(from, to, moved, made)
			return err
		}
		moved = append(moved, rel)
	}
	return nil
}

// makeFolders creates the folder rel inside to and its missing parents
// (0700), appending each one it created to made, outermost first.
func makeFolders(to, rel string, made *[]string) error {
	if rel == "." {
		return nil
	}
	dir := to
	for _, part := range strings.Split(filepath.ToSlash(rel), "/") {
		dir = filepath.Join(dir, part)
		err := os.Mkdir(dir, 0o700)
		switch {
		case err == nil:
			*made = append(*made, dir)
		case errors.Is(err, fs.ErrExist):
			if info, serr := os.Stat(dir); serr != nil || !info.IsDir() {
				return err
			}
		default:
			return err
		}
	}
	return nil
}

// undoMoves moves files back after a failed moveFiles and removes the
// folders it made, innermost first.
func undoMoves(from, to string, moved, made []string) {
	for _, rel := range moved {
		_ = os.Rename(filepath.Join(to, rel), filepath.Join(from, rel))
	}
	for _, dir := range slices.Backward(made) {
		_ = os.Remove(dir)
	}
}

// moveFile renames src to dst, which must not exist; across file systems
// it copies and removes.
func moveFile(src, dst string) error {
	if _, err := os.Lstat(dst); err == nil {
		return fmt.Errorf("%w: %s appeared during the restore", ErrTargetNotEmpty, dst)
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
