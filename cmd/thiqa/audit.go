package main

import (
	"context"
	"crypto"
	"crypto/x509"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"time"

	"github.com/thiqa/thiqa/cmd/thiqa/internal/config"
	"github.com/thiqa/thiqa/hsm"
	"github.com/thiqa/thiqa/internal/audit"
)

// checkpointShutdownTimeout bounds the checkpoint written at shutdown.
const checkpointShutdownTimeout = 30 * time.Second

// runAudit dispatches `thiqa audit verify`.
func runAudit(ctx context.Context, env *cliEnv, args []string) error {
	if len(args) == 0 || args[0] != "verify" {
		return withExit(2, errors.New("usage: thiqa audit verify --data DIR [--checkpoints FILE] [--checkpoint-key PEM] | thiqa audit verify --ceremony DIR"))
	}
	fs := newFlags("audit verify", env)
	dir := fs.String("data", "", "data folder (required unless --ceremony)")
	ceremony := fs.String("ceremony", "", "verify a key-ceremony folder's log instead of a data folder's")
	cpFile := fs.String("checkpoints", "", "checkpoint file (default: the configuration's audit.checkpointFile), e.g. a copy kept off the host")
	cpKey := fs.String("checkpoint-key", "", "checkpoint public key, PEM (default: the configuration's audit.checkpointPublicKey)")
	if err := parseFlags(fs, args[1:]); err != nil {
		return err
	}
	if *ceremony != "" {
		return verifyCeremony(ctx, env, *ceremony)
	}
	cfg, err := loadConfig(*dir)
	if err != nil {
		return err
	}
	logger := newLogger(env.stderr, config.LogConfig{Level: "warn", Format: cfg.Log.Format})
	db, err := openStore(ctx, cfg, logger)
	if err != nil {
		return err
	}
	defer db.Close()
	rep, err := audit.Verify(ctx, db)
	if err != nil {
		return fmt.Errorf("walking the audit chain: %w", err)
	}
	if !rep.OK() {
		fmt.Fprintf(env.stdout, "audit chain BROKEN: %s\n", rep)
		return withExit(1, errSilent)
	}

	// The chain is consistent; now hold it against the checkpoints signed
	// outside the database.
	a := cfg.ResolvedAudit()
	if *cpFile != "" {
		a.CheckpointFile = *cpFile
	}
	if *cpKey != "" {
		a.CheckpointPublicKey = *cpKey
	}
	f, err := os.Open(a.CheckpointFile)
	if errors.Is(err, os.ErrNotExist) {
		fmt.Fprintf(env.stdout, "audit chain OK: %d records, head seq %d, hash %s\n", rep.Verified, rep.Head.Seq, hex.EncodeToString(rep.Head.Hash))
		fmt.Fprintf(env.stdout, "audit checkpoints: none (%s does not exist): the chain is not anchored outside the database\n", a.CheckpointFile)
		return nil
	}
	if err != nil {
		return fmt.Errorf("audit checkpoints: %w", err)
	}
	defer f.Close()
	pub, err := readCheckpointKey(a.CheckpointPublicKey)
	if err != nil {
		return err
	}
	crep, err := audit.VerifyCheckpoints(ctx, db, f, pub)
	if err != nil {
		return fmt.Errorf("checking the audit checkpoints in %s: %w", a.CheckpointFile, err)
	}
	if !crep.OK() {
		fmt.Fprintf(env.stdout, "audit chain BROKEN: %s (%s)\n", crep, a.CheckpointFile)
		return withExit(1, errSilent)
	}
	fmt.Fprintf(env.stdout, "audit chain OK: %d records, head seq %d, hash %s\n", rep.Verified, rep.Head.Seq, hex.EncodeToString(rep.Head.Hash))
	if crep.IncompleteLastLine {
		fmt.Fprintf(env.stdout, "audit checkpoints: WARNING: line %d of %s is incomplete (a crash while writing?) and was ignored\n", crep.IncompleteLine, a.CheckpointFile)
	}
	fmt.Fprintf(env.stdout, "audit checkpoints OK: %s in %s\n", crep, a.CheckpointFile)
	if crep.StoppedAt > 0 {
		fmt.Fprintf(env.stdout, "audit checkpoints: line %d on was written while this verification ran; left for the next run\n", crep.StoppedAt)
	}
	if crep.Last != nil && rep.Head.Seq > crep.Last.Seq {
		fmt.Fprintf(env.stdout, "audit checkpoints: records %d to %d are newer than the last checkpoint and rest on the chain alone\n", crep.Last.Seq+1, rep.Head.Seq)
	}
	return nil
}

// initAuditCheckpoint makes sure the audit checkpoint key exists on the
// token (generating it only when missing) and publishes its public key as
// PEM next to the checkpoint file, so that a verifier needs no token.
func initAuditCheckpoint(ctx context.Context, p *platform, out io.Writer) error {
	a := p.cfg.ResolvedAudit()
	key, generated, err := ensureKey(ctx, p.cfg, p.token, a.CheckpointKey, hsm.ECP256)
	if err != nil {
		return err
	}
	if generated {
		if err := auditKeyGenerated(ctx, p.audit, key); err != nil {
			return err
		}
	}
	if err := publishCheckpointKey(a.CheckpointPublicKey, key.Public()); err != nil {
		return err
	}
	fmt.Fprintf(out, "  audit checkpoints  %s (key %s)\n", a.CheckpointFile, key.URI())
	return nil
}

// wireAuditCheckpoints makes `thiqa serve` sign the audit head every
// audit.checkpointEvery and once more at shutdown (after the service.stop
// record), appending to the checkpoint file. Failures are logged and
// counted (thiqa_audit_checkpoints_total{result="failed"}), never fatal;
// a missing key is, since the data folder then needs `thiqa init`.
func wireAuditCheckpoints(ctx context.Context, p *platform, s *serving) error {
	a := p.cfg.ResolvedAudit()
	every := a.CheckpointInterval()
	if every == 0 {
		p.logger.Warn("audit checkpoints are off (audit.checkpointEvery: 0): the audit log is not anchored outside the database")
		return nil
	}
	label, err := keyLabel(p.cfg, a.CheckpointKey)
	if err != nil {
		return fmt.Errorf("audit.checkpointKey: %w", err)
	}
	key, err := p.token.FindKey(ctx, label)
	if errors.Is(err, hsm.ErrKeyNotFound) {
		return fmt.Errorf("audit checkpoint key %s is not on the token: run thiqa init --data %s to create it (or set audit.checkpointEvery: 0)", a.CheckpointKey, p.cfg.Dir())
	}
	if err != nil {
		return fmt.Errorf("audit checkpoint key %s: %w", a.CheckpointKey, err)
	}
	if err := publishCheckpointKey(a.CheckpointPublicKey, key.Public()); err != nil {
		return err
	}
	w, err := audit.NewCheckpointWriter(p.db, key, a.CheckpointFile, audit.CheckpointWriterOptions{Logger: p.logger, Registerer: p.reg})
	if err != nil {
		return err
	}
	s.background = append(s.background, func(ctx context.Context) { w.Run(ctx, every) })
	// Closers run last-added-first: this one, added by the second service,
	// runs after every later service's closer, once nothing appends.
	s.closers = append(s.closers, func() {
		ctx, cancel := context.WithTimeout(context.Background(), checkpointShutdownTimeout)
		defer cancel()
		if c, written, err := w.Checkpoint(ctx); err == nil && written {
			p.logger.Info("audit checkpoint written at shutdown", "seq", c.Seq, "file", a.CheckpointFile)
		}
	})
	p.logger.Info("audit checkpoints on", "every", every.String(), "file", a.CheckpointFile)
	return nil
}

// publishCheckpointKey writes pub as PEM to path when the file does not
// exist; an existing file must hold the same key.
func publishCheckpointKey(path string, pub crypto.PublicKey) error {
	der, err := x509.MarshalPKIXPublicKey(pub)
	if err != nil {
		return fmt.Errorf("audit checkpoint key: %w", err)
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return fmt.Errorf("creating the checkpoint folder: %w", err)
	}
	body := pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der})
	err = writeFileExclusive(path, body, 0o644)
	if err == nil || !errors.Is(err, os.ErrExist) {
		if err != nil {
			return fmt.Errorf("writing %s: %w", path, err)
		}
		return nil
	}
	have, err := readCheckpointKey(path)
	if err != nil {
		return err
	}
	if k, ok := have.(interface{ Equal(crypto.PublicKey) bool }); !ok || !k.Equal(pub) {
		return fmt.Errorf("%s holds another public key than the audit checkpoint key on the token", path)
	}
	return nil
}

// readCheckpointKey reads the checkpoint public key (PEM, PUBLIC KEY).
func readCheckpointKey(path string) (crypto.PublicKey, error) {
	raw, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("audit checkpoint public key: %w", err)
	}
	b, _ := pem.Decode(raw)
	if b == nil || b.Type != "PUBLIC KEY" {
		return nil, fmt.Errorf("audit checkpoint public key %s: no PEM PUBLIC KEY block", path)
	}
	pub, err := x509.ParsePKIXPublicKey(b.Bytes)
	if err != nil {
		return nil, fmt.Errorf("audit checkpoint public key %s: %w", path, err)
	}
	return pub, nil
}

// checkpointAfterInit anchors what init recorded with a first checkpoint
// (nothing when checkpoints are off or the head has not moved).
func checkpointAfterInit(ctx context.Context, p *platform) error {
	a := p.cfg.ResolvedAudit()
	if a.CheckpointInterval() == 0 {
		return nil
	}
	label, err := keyLabel(p.cfg, a.CheckpointKey)
	if err != nil {
		return fmt.Errorf("audit.checkpointKey: %w", err)
	}
	key, err := p.token.FindKey(ctx, label)
	if err != nil {
		return fmt.Errorf("audit checkpoint key %s: %w", a.CheckpointKey, err)
	}
	w, err := audit.NewCheckpointWriter(p.db, key, a.CheckpointFile, audit.CheckpointWriterOptions{Logger: p.logger})
	if err != nil {
		return err
	}
	if _, _, err := w.Checkpoint(ctx); err != nil {
		return fmt.Errorf("writing the first audit checkpoint: %w", err)
	}
	return nil
}
