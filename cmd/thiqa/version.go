package main

import (
	"context"
	"fmt"
	"runtime"
	"runtime/debug"
)

// Build identity, set by the build with
//
//	-ldflags "-X main.version=V -X main.commit=C -X main.buildDate=D"
//
// (`make build` and `make deb` set them from git). A plain `go build` leaves
// them empty: version then reads "devel", and commit comes from the VCS
// stamp Go records in the binary when built in a git checkout.
var (
	version   = "devel"
	commit    = ""
	buildDate = ""
)

// buildInfo is what `thiqa version` reports.
type buildInfo struct {
	Version, Commit, GoVersion, BuildDate string
}

// currentBuild returns the binary's build identity, "unknown" for what the
// build did not record.
func currentBuild() buildInfo {
	b := buildInfo{Version: version, Commit: commit, GoVersion: runtime.Version(), BuildDate: buildDate}
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

// runVersion prints the version line ("thiqa V", kept for scripts that read
// it) and then the commit, the Go version and the build date.
func runVersion(_ context.Context, env *cliEnv, args []string) error {
	fs := newFlags("version", env)
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	b := currentBuild()
	fmt.Fprintf(env.stdout, "thiqa %s\ncommit: %s\ngo: %s\nbuilt: %s\n", b.Version, b.Commit, b.GoVersion, b.BuildDate)
	return nil
}
