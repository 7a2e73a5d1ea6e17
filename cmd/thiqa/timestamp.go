package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/thiqa/thiqa/internal/atomicfile"
	"github.com/thiqa/thiqa/timestamp"
	"github.com/thiqa/thiqa/timestamp/tsp"
)

// exitRefused is the exit code of `thiqa timestamp` when the TSA refused
// the request (its PKIStatus and failInfo are printed).
const exitRefused = 3

// runTimestamp asks an RFC 3161 TSA for a token over a file's hash and
// writes the DER TimeStampToken: `thiqa timestamp --url U --in F --out T`.
func runTimestamp(ctx context.Context, env *cliEnv, args []string) error {
	fs := newFlags("timestamp", env)
	url := fs.String("url", "", "TSA URL, e.g. http://127.0.0.1:8080/tsa (required)")
	in := fs.String("in", "", "file to time-stamp (required; - for standard input)")
	out := fs.String("out", "", "where to write the DER TimeStampToken (required)")
	hashName := fs.String("hash", "sha256", "message imprint hash: sha256, sha384 or sha512")
	policy := fs.String("policy", "", "TSA policy OID to request (default: the TSA's)")
	noCert := fs.Bool("no-cert", false, "do not ask for the TSA certificate in the token (certReq false)")
	timeout := fs.Duration("timeout", 10*time.Second, "time allowed for the request")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	h, ok := timestamp.HashByName(*hashName)
	if !ok {
		return withExit(2, fmt.Errorf("--hash %q: want sha256, sha384 or sha512", *hashName))
	}
	if *url == "" || *in == "" || *out == "" {
		return withExit(2, errors.New("--url, --in and --out are required"))
	}
	client, err := timestamp.NewClient(*url, timestamp.ClientOptions{Timeout: *timeout, Policy: *policy, NoCertReq: *noCert})
	if err != nil {
		return withExit(2, err)
	}
	var data io.Reader = os.Stdin
	if *in != "-" {
		f, err := os.Open(*in)
		if err != nil {
			return fmt.Errorf("reading --in: %w", err)
		}
		defer f.Close()
		data = f
	}
	token, err := client.TimestampData(ctx, data, h)
	var refused *timestamp.StatusError
	if errors.As(err, &refused) {
		return withExit(exitRefused, err)
	}
	if err != nil {
		return err
	}
	if err := atomicfile.Write(*out, token, 0o644); err != nil {
		return err
	}
	if tok, err := tsp.ParseToken(token); err == nil {
		fmt.Fprintf(env.stdout, "time-stamp token written to %s: %s\n", *out, tok.Summary())
	}
	return nil
}
