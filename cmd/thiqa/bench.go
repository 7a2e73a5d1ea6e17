package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"slices"

	"github.com/thiqa/thiqa/bench"
)

// benchmarks lists the load generators of `thiqa bench` (bench.Generators).
func benchmarks() []command {
	var cs []command
	for _, g := range bench.Generators() {
		cs = append(cs, command{g.Name, g.Summary, benchVerb(g)})
	}
	return cs
}

// runBench dispatches the load generators.
func runBench(ctx context.Context, env *cliEnv, args []string) error {
	if len(args) == 0 || args[0] == "-h" || args[0] == "--help" || args[0] == "help" {
		bench.WriteUsage(env.stderr)
		if len(args) == 0 {
			return withExit(2, errSilent)
		}
		return nil
	}
	for _, b := range benchmarks() {
		if b.name == args[0] {
			return b.run(ctx, env, args[1:])
		}
	}
	bench.WriteUsage(env.stderr)
	return withExit(2, fmt.Errorf("unknown benchmark %q", args[0]))
}

// benchVerb runs a load generator of package bench on this binary's
// deployment (benchdeps.go), after its note when asked for help, and maps
// its refusals to exit codes.
func benchVerb(g bench.Generator) func(context.Context, *cliEnv, []string) error {
	return func(ctx context.Context, env *cliEnv, args []string) error {
		if slices.ContainsFunc(args, isHelpFlag) {
			g.WriteHelp(env.stderr)
		}
		err := g.Run(ctx, benchDeps{stderr: env.stderr}, args, env.stdout, env.stderr)
		var ue *bench.UsageError
		switch {
		case err == nil:
			return nil
		case errors.Is(err, flag.ErrHelp):
			return withExit(0, errSilent)
		case errors.Is(err, bench.ErrReported):
			return withExit(2, errSilent)
		case errors.As(err, &ue):
			return withExit(2, err)
		}
		return err
	}
}

// isHelpFlag reports whether arg asks for a command's help.
func isHelpFlag(arg string) bool {
	return arg == "-h" || arg == "-help" || arg == "--help" || arg == "--h"
}
