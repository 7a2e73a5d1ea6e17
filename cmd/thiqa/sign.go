package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/url"
	"os"
	"time"

	"github.com/thiqa/thiqa/cmd/thiqa/internal/config"
	"github.com/thiqa/thiqa/internal/atomicfile"
	"github.com/thiqa/thiqa/signing/client"
)

// runSign signs a PDF with a citizen's remote key through the server:
// `thiqa sign --url URL --token-file F --credential ID --pin-env VAR --level L
// --in F --out G` (and the document options of `thiqa seal`: --reason …
// --visible --rect …). The citizen's API token and signing PIN authorise the
// one signature (POST /api/v1/sign); the PIN is read from a file or an
// environment variable, never from the command line.
func runSign(ctx context.Context, env *cliEnv, args []string) error {
	fs := newFlags("sign", env)
	base := fs.String("url", "http://127.0.0.1:8080", "base URL of the Thiqa server")
	tokenFile := fs.String("token-file", "", "file holding the citizen's API token (required)")
	credID := fs.String("credential", "", "credential ID of the citizen's signing key (required)")
	pinFile := fs.String("pin-file", "", "file holding the signing PIN")
	pinEnv := fs.String("pin-env", "", "environment variable holding the signing PIN (wins over --pin-file)")
	levelName := fs.String("level", "B-B", "PAdES level: B-B, B-T, B-LT or B-LTA")
	inPath := fs.String("in", "", "PDF to sign (required)")
	outPath := fs.String("out", "", "signed PDF to write (required; written only on success)")
	timeout := fs.Duration("timeout", 5*time.Minute, "time limit of the request")
	df := addDocFlags(fs)
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if *tokenFile == "" || *credID == "" || *inPath == "" || *outPath == "" || (*pinFile == "" && *pinEnv == "") {
		return withExit(2, errors.New("--token-file, --credential, --in, --out and one of --pin-file or --pin-env are required"))
	}
	token, err := config.ReadSecret(*tokenFile, "")
	if err != nil {
		return fmt.Errorf("API token: %w", err)
	}
	pinValue, err := config.ReadSecret(*pinFile, *pinEnv)
	if err != nil {
		return fmt.Errorf("signing PIN: %w", err)
	}
	in, err := os.Open(*inPath)
	if err != nil {
		return err
	}
	defer in.Close()
	st, err := in.Stat()
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, *timeout)
	defer cancel()
	q := url.Values{}
	img, err := df.Query(q)
	if err != nil {
		return docError(err)
	}
	c := &client.Client{Base: *base, Token: token}
	req := client.SignRequest{Credential: *credID, PIN: pinValue, Level: *levelName, Options: q, Image: img, Document: in, Size: st.Size()}
	var res *client.Signed
	if err := atomicfile.WriteWith(*outPath, ".sign-*.pdf", func(w io.Writer) (err error) {
		res, err = c.Sign(ctx, req, func() (io.Writer, error) { return w, nil })
		return err
	}); err != nil {
		return err
	}
	for _, w := range res.Warnings {
		fmt.Fprintf(env.stderr, "warning: %s\n", w)
	}
	fmt.Fprintf(env.stdout, "signed %s -> %s (%s, %d bytes, digest %s)\n", *inPath, *outPath, *levelName, res.Size, res.Digest)
	return nil
}
