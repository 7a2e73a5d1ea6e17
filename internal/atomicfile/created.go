package atomicfile

import (
	"errors"
	"os"
)

// Created remembers what a preparation of a folder in several steps
// created, so that a failure leaves nothing half-created: Undo removes the
// whole folder when it did not exist before, else what was added, newest
// first.
type Created struct {
	dir   string
	isNew bool
	paths []string
}

// NewCreated starts remembering what is created in dir, which may not
// exist yet.
func NewCreated(dir string) *Created {
	_, err := os.Stat(dir)
	return &Created{dir: dir, isNew: errors.Is(err, os.ErrNotExist)}
}

// Add remembers files or folders created in the folder ("" is nothing).
func (c *Created) Add(paths ...string) {
	for _, p := range paths {
		if p != "" {
			c.paths = append(c.paths, p)
		}
	}
}

// Undo removes what was created (best effort: a preparation that failed
// reports its own error).
func (c *Created) Undo() {
	if c.isNew {
		_ = os.RemoveAll(c.dir)
		return
	}
	for i := len(c.paths) - 1; i >= 0; i-- {
		_ = os.RemoveAll(c.paths[i])
	}
}
