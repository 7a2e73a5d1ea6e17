package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"time"

	"github.com/thiqa/thiqa/signer"
	"github.com/thiqa/thiqa/store"
)

// runSeal seals a PDF in process with an agency's seal credential:
// `thiqa seal --data DIR --credential ID --level L --in F --out G`. It is the
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
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if *credID == "" || *inPath == "" || *outPath == "" {
		return withExit(2, errors.New("--credential, --in and --out are required"))
	}
	level, err := signer.ParseLevel(*levelName)
	if err != nil {
		return withExit(2, err)
	}
	cfg, err := loadConfig(*dir)
	if err != nil {
		return err
	}
	if !cfg.Signing.Enabled(cfg.CA) {
		return errors.New("this data folder has no signing service (ca section missing or signing.disabled)")
	}
	p, closePlatform, err := openOperatorPlatform(ctx, env, cfg)
	if err != nil {
		return err
	}
	defer closePlatform()
	s, err := newSigningService(ctx, p, nil, nil, nil)
	if err != nil {
		return err
	}
	rec := signRecord{action: actionSeal, actor: operatorName(), credential: *credID, level: level.String()}
	cred, err := s.load(ctx, *credID, "", "")
	if err == nil && cred.rec.OwnerKind != store.OwnerAgency {
		err = fmt.Errorf("%w: %s is not an organisation-seal credential", errCredentialRefused, *credID)
	}
	if err == nil {
		rec.actor += " for " + cred.rec.OwnerID
	}
	in, err := os.Open(*inPath)
	if err == nil {
		defer in.Close()
	}
	var st os.FileInfo
	if err == nil {
		st, err = in.Stat()
	}
	if err != nil {
		_, msg, outcome := classify(err)
		_ = s.auditSign(ctx, rec, outcome, msg)
		return err
	}
	rec.size = st.Size()
	tmp, err := os.CreateTemp(filepath.Dir(*outPath), ".seal-*.pdf")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name())
	start := time.Now()
	res, err := s.signPDF(ctx, rec, cred, level, pdfInput{r: in, size: st.Size()}, func([]byte, int64) (io.Writer, error) { return tmp, nil }, nil, nil)
	if err != nil {
		tmp.Close()
		_, msg, outcome := classify(err)
		if !errors.Is(err, errAudit) {
			_ = s.auditSign(ctx, rec, outcome, msg)
		}
		return fmt.Errorf("sealing %s: %w", *inPath, err)
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	if err := os.Rename(tmp.Name(), *outPath); err != nil {
		return err
	}
	fmt.Fprintf(env.stdout, "sealed %s -> %s (%s, %d bytes, %s, digest %x)\n", *inPath, *outPath, res.Level, res.Size, time.Since(start).Round(time.Millisecond), res.DocumentDigest)
	return nil
}
