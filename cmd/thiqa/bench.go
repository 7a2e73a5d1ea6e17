package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"

	"github.com/thiqa/thiqa/bench"
)

// benchmarks lists the load generators of `thiqa bench`.
func benchmarks() []command {
	return []command{
		{"hsm", "raw signing rate of the token vs the signer (hsm --data DIR)", benchVerb(bench.HSM)},
		{"issue", "certificate issuance load on a running server (issue --data DIR --url U)", benchVerb(bench.Issue)},
		{"ocsp", "OCSP responder load (ocsp --data DIR --url U/ocsp)", benchVerb(bench.OCSP)},
		{"tsa", "RFC 3161 time-stamp load vs the raw HSM rate (tsa URL/tsa --data DIR)", benchVerb(bench.TSA)},
		{"login", "digital-ID logins (login --data DIR --url U)", benchVerb(bench.Login)},
		{"seal", "PAdES e-seals per level (seal URL --data DIR [--server-pid P])", benchVerb(bench.Seal)},
		{"sign", "CSC signHash signatures (sign URL --data DIR [--server-pid P])", benchVerb(bench.Sign)},
		{"cluster", "failover load through a load balancer, then its checks (cluster URL --data DIR; scripts/cluster.sh failover-test)", benchVerb(bench.Cluster)},
		{"verify", "validations of a signed PDF in process (verify --in F --trust PEM)", benchVerb(bench.Verify)},
	}
}

// runBench dispatches the load generators.
func runBench(ctx context.Context, env *cliEnv, args []string) error {
	if len(args) == 0 || args[0] == "-h" || args[0] == "--help" || args[0] == "help" {
		benchUsage(env.stderr)
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
	benchUsage(env.stderr)
	return withExit(2, fmt.Errorf("unknown benchmark %q", args[0]))
}

// benchVerb runs a load generator of package bench on this binary's
// deployment (benchdeps.go) and maps its refusals to exit codes.
func benchVerb(g func(ctx context.Context, deps bench.Deps, args []string, stdout, stderr io.Writer) error) func(context.Context, *cliEnv, []string) error {
	return func(ctx context.Context, env *cliEnv, args []string) error {
		err := g(ctx, benchDeps{stderr: env.stderr}, args, env.stdout, env.stderr)
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

func benchUsage(w io.Writer) {
	fmt.Fprintln(w, "usage: thiqa bench <benchmark> [flags]\n\nbenchmarks:")
	for _, b := range benchmarks() {
		fmt.Fprintf(w, "  %-7s %s\n", b.name, b.summary)
	}
	fmt.Fprintln(w, "\nRun 'thiqa bench <benchmark> -h' for its flags.")
}
