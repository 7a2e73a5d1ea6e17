package main

import (
	"context"

	"github.com/thiqa/thiqa/internal/buildinfo"
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

// runVersion prints the version line ("thiqa V", kept for scripts that read
// it) and then the commit, the Go version and the build date.
func runVersion(_ context.Context, env *cliEnv, args []string) error {
	fs := newFlags("version", env)
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	return buildinfo.Read(version, commit, buildDate).WriteText(env.stdout)
}
