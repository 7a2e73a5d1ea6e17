package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"slices"

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

// benchNotes says, for `thiqa bench NAME -h`, how long each load generator
// runs with its defaults and what it leaves on the token and in the store
// (docs/benchmarks.md has the same table). None of them cleans up: run them
// on a scratch data folder, never on a production one.
var benchNotes = map[string]string{
	"hsm": "Runs about 50 s with the defaults (2 key types x 4 concurrency levels x 3 rounds x 1 s raw + 1 s signer).\n" +
		"Leaves one key per type on the token (pkcs11:…;object=bench-ec-p256, bench-rsa-2048; reused by later runs) and a key.generate audit record when it creates one.",
	"issue": "Runs about 10 s (two 2 s raw HSM measurements, then 2,100 requests at concurrency 8 at a few hundred per second).\n" +
		"Leaves every certificate it issues in the store (2,100 with the defaults, profile citizen-signing, subject keys generated in this process and thrown away) with their audit records; no key on the token.",
	"ocsp": "Runs about 12 s (--duration 10 s plus loading the certificates it asks about).\n" +
		"Leaves nothing: it only reads. With --prepare N it issues N citizen-signing certificates into the store (audited) and exits.",
	"tsa": "Runs about 20 s (raw HSM rates before and after, 2 s each twice, 1 s warm-up, 5 s full load, 5 s half load).\n" +
		"Leaves every time-stamp token's audit record and the TSA serials it used; no key, no certificate.",
	"login": "Runs about 30 s (issues 16 citizens, 2 s raw HSM rate, 1,050 logins at concurrency 4; each mobile-ID login hashes a PIN).\n" +
		"Leaves per run: 16 citizen-auth keys on the token with their certificates and mobile-ID enrolments, one registered portal (\"Benchmark portal\"), and the audit records of every login.",
	"seal": "Runs about 25 s (2 s raw HSM rates before and after, 5 s per level B-B, B-T, B-LT; --large adds one big seal).\n" +
		"Leaves per run: one organisation-seal key on the token (keyInHSM) with its certificate in the store, and an audit record for every seal.",
	"sign": "Runs about 25 s (prepares --sads SADs, 2 s raw HSM rates before and after, 5 s signHash, 5 s each of sign B-B and B-T).\n" +
		"Leaves per run: one citizen-signing key on the token (keyInHSM) with its certificate and PIN in the store, and an audit record for every signature.",
	"cluster": "Runs --duration (30 s) of closed-loop TSA, seal and issuance load through the load balancer, then reads the whole audit log.\n" +
		"Leaves per run: one organisation-seal key on the token (keyInHSM) with its certificate, every certificate it issues and every time-stamp and seal's audit record.",
	"verify": "Runs --duration (5 s) per round in process (with --compare, 3 rounds per verifier); with --url, against a running server.\n" +
		"Leaves nothing: validation writes nothing (with --url, the server counts the requests in its metrics).",
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
			if note := benchNotes[b.name]; note != "" && slices.ContainsFunc(args[1:], isHelpFlag) {
				fmt.Fprintf(env.stderr, "thiqa bench %s: %s\n%s\n\n", b.name, b.summary, note)
			}
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

// isHelpFlag reports whether arg asks for a command's help.
func isHelpFlag(arg string) bool {
	return arg == "-h" || arg == "-help" || arg == "--help" || arg == "--h"
}

func benchUsage(w io.Writer) {
	fmt.Fprintln(w, "usage: thiqa bench <benchmark> [flags]\n\nbenchmarks:")
	for _, b := range benchmarks() {
		fmt.Fprintf(w, "  %-7s %s\n", b.name, b.summary)
	}
	fmt.Fprintln(w, "\nRun 'thiqa bench <benchmark> -h' for its flags, how long it runs and what it leaves on the token and in the store.")
	fmt.Fprintln(w, "Every benchmark except verify and ocsp adds keys, certificates or audit records: use a scratch data folder.")
}
