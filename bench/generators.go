package bench

import (
	"context"
	"fmt"
	"io"
)

// Generator is one load generator of `thiqa bench`: its name, the line
// `thiqa bench -h` shows, and the note `thiqa bench NAME -h` prints before
// its flags.
type Generator struct {
	Name    string
	Summary string
	// Note says how long the generator runs with its defaults and what it
	// leaves on the token and in the store (docs/benchmarks.md has the same
	// table). None of them cleans up: run them on a scratch data folder,
	// never on a production one.
	Note string
	// Run runs the generator on deps with its command line args.
	Run func(ctx context.Context, deps Deps, args []string, stdout, stderr io.Writer) error
}

// Generators lists the load generators of `thiqa bench`, in the order its
// help lists them.
func Generators() []Generator {
	return []Generator{
		{Name: "hsm", Summary: "raw signing rate of the token vs the signer (hsm --data DIR)", Run: HSM,
			Note: "Runs about 50 s with the defaults (2 key types x 4 concurrency levels x 3 rounds x 1 s raw + 1 s signer).\n" +
				"Leaves one key per type on the token (pkcs11:…;object=bench-ec-p256, bench-rsa-2048; reused by later runs) and a key.generate audit record when it creates one."},
		{Name: "issue", Summary: "certificate issuance load on a running server (issue --data DIR --url U)", Run: Issue,
			Note: "Runs about 10 s (two 2 s raw HSM measurements, then 2,100 requests at concurrency 8 at a few hundred per second).\n" +
				"Leaves every certificate it issues in the store (2,100 with the defaults, profile citizen-signing, subject keys generated in this process and thrown away) with their audit records; no key on the token."},
		{Name: "ocsp", Summary: "OCSP responder load (ocsp --data DIR --url U/ocsp)", Run: OCSP,
			Note: "Runs about 12 s (--duration 10 s plus loading the certificates it asks about).\n" +
				"Leaves nothing: it only reads. With --prepare N it issues N citizen-signing certificates into the store (audited) and exits."},
		{Name: "tsa", Summary: "RFC 3161 time-stamp load vs the raw HSM rate (tsa URL/tsa --data DIR)", Run: TSA,
			Note: "Runs about 20 s (raw HSM rates before and after, 2 s each twice, 1 s warm-up, 5 s full load, 5 s half load).\n" +
				"Leaves every time-stamp token's audit record and the TSA serials it used; no key, no certificate."},
		{Name: "login", Summary: "digital-ID logins (login --data DIR --url U)", Run: Login,
			Note: "Runs about 30 s (issues 16 citizens, 2 s raw HSM rate, 1,050 logins at concurrency 4; each mobile-ID login hashes a PIN).\n" +
				"Leaves per run: 16 citizen-auth keys on the token with their certificates and mobile-ID enrolments, one registered portal (\"Benchmark portal\"), and the audit records of every login."},
		{Name: "seal", Summary: "PAdES e-seals per level (seal URL --data DIR [--server-pid P])", Run: Seal,
			Note: "Runs about 25 s (2 s raw HSM rates before and after, 5 s per level B-B, B-T, B-LT; --large adds one big seal).\n" +
				"Leaves per run: one organisation-seal key on the token (keyInHSM) with its certificate in the store, and an audit record for every seal."},
		{Name: "sign", Summary: "CSC signHash signatures (sign URL --data DIR [--server-pid P])", Run: Sign,
			Note: "Runs about 25 s (prepares --sads SADs, 2 s raw HSM rates before and after, 5 s signHash, 5 s each of sign B-B and B-T).\n" +
				"Leaves per run: one citizen-signing key on the token (keyInHSM) with its certificate and PIN in the store, and an audit record for every signature."},
		{Name: "cluster", Summary: "failover load through a load balancer, then its checks (cluster URL --data DIR; scripts/cluster.sh failover-test)", Run: Cluster,
			Note: "Runs --duration (30 s) of closed-loop TSA, seal and issuance load through the load balancer, then reads the whole audit log.\n" +
				"Leaves per run: one organisation-seal key on the token (keyInHSM) with its certificate, every certificate it issues and every time-stamp and seal's audit record."},
		{Name: "verify", Summary: "validations of a signed PDF in process (verify --in F --trust PEM)", Run: Verify,
			Note: "Runs --duration (5 s) per round in process (with --compare, 3 rounds per verifier); with --url, against a running server.\n" +
				"Leaves nothing: validation writes nothing (with --url, the server counts the requests in its metrics)."}}
}

// WriteHelp writes what `thiqa bench NAME -h` says before the flags.
func (g Generator) WriteHelp(w io.Writer) {
	fmt.Fprintf(w, "thiqa bench %s: %s\n%s\n\n", g.Name, g.Summary, g.Note)
}

// WriteUsage writes the help of `thiqa bench`: every generator and what
// to know before running one.
func WriteUsage(w io.Writer) {
	fmt.Fprintln(w, "usage: thiqa bench <benchmark> [flags]\n\nbenchmarks:")
	for _, g := range Generators() {
		fmt.Fprintf(w, "  %-7s %s\n", g.Name, g.Summary)
	}
	fmt.Fprintln(w, "\nRun 'thiqa bench <benchmark> -h' for its flags, how long it runs and what it leaves on the token and in the store.")
	fmt.Fprintln(w, "Every benchmark except verify and ocsp adds keys, certificates or audit records: use a scratch data folder.")
}
