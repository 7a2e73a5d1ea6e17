// Command thiqa is Thiqa's one binary: it prepares a data folder (keys on the
// PKCS#11 token, the store), serves every service over HTTP, and carries the
// operator's and the developer's tools (tokens, audit verification, benchmarks).
//
// It is the only place that knows every part: it reads the configuration,
// builds the parts and wires them together.
package main

import (
	"context"
	"io"
	"os"
	"os/signal"
	"syscall"

	"github.com/thiqa/thiqa/internal/cli"
)

// withExit attaches an exit code to err.
func withExit(code int, err error) error { return cli.WithExit(code, err) }

// errSilent marks an error whose message was already printed.
var errSilent = cli.ErrSilent

// command is one subcommand.
type command struct {
	name    string
	summary string
	run     func(ctx context.Context, env *cliEnv, args []string) error
}

// cliEnv is what every subcommand writes to.
type cliEnv struct {
	stdout io.Writer
	stderr io.Writer
}

func commands() []command {
	return []command{
		{"init", "prepare a data folder: SoftHSM token, keys, store, configuration", runInit},
		{"serve", "serve every service over HTTP", runServe},
		{"issue", "issue a certificate from a CSR (issue --profile P --csr FILE --subject-file FILE)", runIssue},
		{"ca", "CA operations: the offline root's key ceremony (ca root create|sign|crl --ceremony DIR), installing its results and rollover (ca import|crl import|rollover --data DIR); taking an online root offline (ca root adopt --ceremony DIR, then ca root retire-online --data DIR)", runCA},
		{"revoke", "revoke a certificate (revoke --serial S --reason R)", runRevoke},
		{"enrol", "a one-time enrolment (reference and secret) for CMP or EST (enrol create --data DIR --profile P --subject-file FILE); voiding one whose secret leaked (enrol void --data DIR REFERENCE)", runEnrol},
		{"timestamp", "time-stamp a file with an RFC 3161 TSA (timestamp --url U --in FILE --out TOKEN)", runTimestamp},
		{"verify", "verify a signed PDF: ETSI verdict per signature (verify FILE [--trust PEM]... [--data DIR] [--at T] [--json])", runVerify},
		{"tsl", "ETSI trusted lists: check one (tsl check FILE|URL --signer PEM), build and sign this deployment's (tsl build --data DIR)", runTSL},
		{"seal", "seal a PDF with an agency's seal credential (seal --data DIR --credential ID --level L --in F --out G)", runSeal},
		{"extend", "long-term archive: extend a signed PDF to B-LT/B-LTA (extend --in F --out G --level B-LTA), or renew a folder (extend --dir D --renew-before 90d)", runExtend},
		{"sign", "sign a PDF with a citizen's remote key through the server (sign --token-file F --credential ID --pin-env V --in F --out G)", runSign},
		{"oidc", "digital ID: register portals, enrol mobile IDs (oidc client add|list, oidc mobile enrol)", runOIDC},
		{"token", "print a development API token for a subject and role", runToken},
		{"audit", "verify the hash-chained audit log (audit verify), count what it records (audit report), look records up (audit find), archive the oldest (audit archive), give their space back to the disk (audit compact)", runAudit},
		{"notify", "notifications to citizens: show the notifier's cursor and lag (notify status --data DIR [--json]), retire the cursor once they are off for good (notify retire --data DIR)", runNotify},
		{"backup", "online backup of a data folder and its store (backup --data DIR --out FILE)", runBackup},
		{"restore", "restore a backup into a fresh data folder with the same token (restore --in FILE --data DIR)", runRestore},
		{"keys", "list the keys on the token (keys list)", runKeys},
		{"bench", "load generators: bench hsm|issue|ocsp|tsa|login|seal|sign|verify ('thiqa bench -h' lists them)", runBench},
		{"config", "print the default configuration or check one (config default [--clock SOURCE], config check --data DIR)", runConfig},
		{"version", "print the version, commit, Go version and build date", runVersion},
	}
}

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, &cliEnv{stdout: os.Stdout, stderr: os.Stderr}, os.Args[1:])
	stop()
	os.Exit(code)
}

// run executes one command line and returns the process exit code
// (cli.Main).
func run(ctx context.Context, env *cliEnv, args []string) int {
	var cmds []cli.Command
	for _, c := range commands() {
		cmds = append(cmds, cli.Command{Name: c.name, Summary: c.summary, Run: func(args []string) error { return c.run(ctx, env, args) }})
	}
	return cli.Main("thiqa", cmds, args, env.stderr)
}
