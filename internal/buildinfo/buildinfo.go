// Package buildinfo says which build a binary is: its version, commit, Go
// version and build date, from what the build stamped into it.
package buildinfo

import (
	"fmt"
	"io"
	"runtime"
	"runtime/debug"
)

// Info is a binary's build identity.
type Info struct {
	Version, Commit, GoVersion, BuildDate string
}

// Read returns the build identity from what the build set (with -ldflags
// -X; empty when it did not): version "devel" when unset, the commit Go
// stamped from the VCS when none was set, and "unknown" for whatever the
// build did not record.
func Read(version, commit, buildDate string) Info {
	b := Info{Version: version, Commit: commit, GoVersion: runtime.Version(), BuildDate: buildDate}
	if b.Version == "" {
		b.Version = "devel"
	}
	if b.Commit == "" {
		b.Commit = vcsCommit()
	}
	if b.BuildDate == "" {
		b.BuildDate = "unknown"
	}
	return b
}

// WriteText writes the version line ("thiqa V", kept for scripts that read
// it), then the commit, the Go version and the build date.
func (b Info) WriteText(w io.Writer) error {
	_, err := fmt.Fprintf(w, "thiqa %s\ncommit: %s\ngo: %s\nbuilt: %s\n", b.Version, b.Commit, b.GoVersion, b.BuildDate)
	return err
}

// vcsCommit returns the revision Go stamped into the binary, with
// "-dirty" when the work tree had changes, or "unknown".
func vcsCommit() string {
	info, ok := debug.ReadBuildInfo()
	if !ok {
		return "unknown"
	}
	rev, dirty := "", false
	for _, s := range info.Settings {
		switch s.Key {
		case "vcs.revision":
			rev = s.Value
		case "vcs.modified":
			dirty = s.Value == "true"
		}
	}
	if rev == "" {
		return "unknown"
	}
	if dirty {
		rev += "-dirty"
	}
	return rev
}
