package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/thiqa/thiqa/internal/atomicfile"
	"github.com/thiqa/thiqa/signer"
)

// runSeal seals a PDF in process with an agency's seal credential:
// `thiqa seal --data DIR --credential ID --level L --in F --out G` (and the
// document options: --reason, --location, --contact-info, --certify N,
// --visible --page N --rect x1,y1,x2,y2 [--locale ar|en] [--image PNG]). It is the
// operator's tool (it needs the data folder and the token); agencies use
// POST /api/v1/seal. B-T and above ask the configured TSA (by default the
// running server's /tsa) and the server's OCSP responder and CRLs.
func runSeal(ctx context.Context, env *cliEnv, args []string) error {
	fs := newFlags("seal", env)
	dir := fs.String("data", "", "data folder (required)")
	credID := fs.String("credential", "", "credential ID of an organisation-seal key (required)")
	levelName := fs.String("level", "B-B", "PAdES level: B-B, B-T, B-LT or B-LTA")
	inPath := fs.String("in", "", "PDF to seal (required)")
	outPath := fs.String("out", "", "sealed PDF to write (required; written only on success)")
	df := addDocFlags(fs)
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	doc, err := df.Options()
	if err != nil {
		return docError(err)
	}
	if *credID == "" || *inPath == "" || *outPath == "" {
		return withExit(2, errors.New("--credential, --in and --out are required"))
	}
	level, err := signer.ParseLevel(*levelName)
	if err != nil {
		return withExit(2, err)
	}
	p, closePlatform, err := openOperatorFolder(ctx, env, *dir, needSigning)
	if err != nil {
		return err
	}
	defer closePlatform()
	if p.cfg.CA.Enabled() {
		// Apply the imported root CRL, as `thiqa issue` does, so that a
		// credential whose issuing CA the root revoked seals nothing
		// (signing.Options.IssuerRevocations reads p.revokedCAs). Only
		// where the CA runs: a node without the CA's keys cannot open it,
		// and keeps sealing until the credential's own certificate is
		// revoked (docs/operations.md, Key compromise). Opening reads the
		// keys and the store: it signs, publishes and locks nothing.
		if _, err := openAuthority(ctx, p, nil); err != nil {
			return fmt.Errorf("reading the issuing CAs' revocation: %w", err)
		}
	}
	s, err := newSigningService(ctx, p, nil, nil, nil)
	if err != nil {
		return err
	}
	var in *os.File
	defer func() {
		if in != nil {
			in.Close()
		}
	}()
	open := func() (io.ReaderAt, int64, error) {
		var err error
		if in, err = os.Open(*inPath); err != nil {
			return nil, 0, err
		}
		st, err := in.Stat()
		if err != nil {
			return nil, 0, err
		}
		return in, st.Size(), nil
	}
	start := time.Now()
	var res *signer.Result
	if err := atomicfile.WriteWith(*outPath, ".seal-*.pdf", func(w io.Writer) (err error) {
		if res, err = s.OperatorSealWith(ctx, operatorName(), *credID, level, doc, open, w); err != nil {
			return fmt.Errorf("sealing %s: %w", *inPath, err)
		}
		return nil
	}); err != nil {
		return err
	}
	for _, w := range doc.Warnings() {
		fmt.Fprintf(env.stderr, "warning: %s\n", w)
	}
	fmt.Fprintf(env.stdout, "sealed %s -> %s (%s, %d bytes, %s, digest %x)\n", *inPath, *outPath, res.Level, res.Size, time.Since(start).Round(time.Millisecond), res.DocumentDigest)
	return nil
}
