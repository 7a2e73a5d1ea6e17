package main

import (
	"cmp"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/thiqa/thiqa/hsm"
	"github.com/thiqa/thiqa/internal/audit"
)

// runAudit dispatches `thiqa audit verify|report`.
func runAudit(ctx context.Context, env *cliEnv, args []string) error {
	if len(args) > 0 && args[0] == "report" {
		return auditReport(ctx, env, args[1:])
	}
	if len(args) == 0 || args[0] != "verify" {
		return subcommandUsage(env, "audit", `usage:
  thiqa audit verify --data DIR [--checkpoints FILE] [--checkpoint-key PEM] [--since SEQ]
  thiqa audit verify --ceremony DIR
  thiqa audit report --data DIR [--from 2026-11] [--to 2026-12] [--by month|day|total] [--json]`, args)
	}
	fs := newFlags("audit verify", env)
	dir := fs.String("data", "", "data folder (required unless --ceremony)")
	ceremony := fs.String("ceremony", "", "verify a key-ceremony folder's log instead of a data folder's")
	cpFile := fs.String("checkpoints", "", "checkpoint file (default: the configuration's audit.checkpointFile), e.g. a copy kept off the host")
	cpKey := fs.String("checkpoint-key", "", "checkpoint public key, PEM (default: the configuration's audit.checkpointPublicKey)")
	since := fs.Int64("since", 0, "incremental: verify only from the newest signed checkpoint at or before this seq to the head (records before it are not re-checked); default: the whole chain from seq 1")
	if err := parseFlags(fs, args[1:]); err != nil {
		return err
	}
	sinceSet := false
	fs.Visit(func(f *flag.Flag) { sinceSet = sinceSet || f.Name == "since" })
	if sinceSet && *since < 1 {
		return withExit(2, fmt.Errorf("--since %d: give the seq of a record (1 or more)", *since))
	}
	if *ceremony != "" {
		if sinceSet {
			return withExit(2, errors.New("--since verifies a data folder's log against its checkpoints; it does not apply to --ceremony"))
		}
		return verifyCeremony(ctx, env, *ceremony)
	}
	cfg, db, err := openFolderStore(ctx, env, *dir)
	if err != nil {
		return err
	}
	defer db.Close()
	a := cfg.ResolvedAudit()
	file, key := cmp.Or(*cpFile, a.CheckpointFile), cmp.Or(*cpKey, a.CheckpointPublicKey)
	var ok bool
	if sinceSet {
		ok, err = audit.VerifySince(ctx, db, file, key, *since, env.stdout)
	} else {
		ok, err = audit.VerifyAll(ctx, db, file, key, env.stdout)
	}
	if err != nil {
		return err
	}
	if !ok {
		return withExit(1, errSilent)
	}
	return nil
}

// auditReport is `thiqa audit report`: the events the audit log records
// in [--from, --to), per period and action, by outcome (audit.CountActivity).
func auditReport(ctx context.Context, env *cliEnv, args []string) error {
	fs := newFlags("audit report", env)
	dir := fs.String("data", "", "data folder (required)")
	fromFlag := fs.String("from", "", "first month, day or RFC 3339 time counted (default: the log's beginning)")
	toFlag := fs.String("to", "", "first month, day or RFC 3339 time not counted (default: now)")
	byFlag := fs.String("by", "month", "group by month, day (UTC) or total")
	asJSON := fs.Bool("json", false, "print JSON")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	by, err := audit.ParsePeriod(*byFlag)
	if err != nil {
		return withExit(2, fmt.Errorf("--by: %w", err))
	}
	from, to := time.Unix(0, 0).UTC(), time.Now().UTC()
	if *fromFlag != "" {
		if from, err = audit.ParseDate(*fromFlag); err != nil {
			return withExit(2, fmt.Errorf("--from: %w", err))
		}
	}
	if *toFlag != "" {
		if to, err = audit.ParseDate(*toFlag); err != nil {
			return withExit(2, fmt.Errorf("--to: %w", err))
		}
	}
	_, db, err := openFolderStore(ctx, env, *dir)
	if err != nil {
		return err
	}
	defer db.Close()
	a, err := audit.CountActivity(ctx, db, from, to, by)
	if errors.Is(err, audit.ErrBadRange) {
		return withExit(2, err)
	}
	if err != nil {
		return err
	}
	if *asJSON {
		return a.WriteJSON(env.stdout)
	}
	return a.WriteText(env.stdout)
}

// initAuditCheckpoint makes sure the audit checkpoint key exists on the
// token (generating it only when missing) and publishes its public key as
// PEM next to the checkpoint file, so that a verifier needs no token.
func initAuditCheckpoint(ctx context.Context, p *platform, out io.Writer) error {
	a := p.cfg.ResolvedAudit()
	key, err := ensureServiceKey(ctx, p, a.CheckpointKey, hsm.ECP256)
	if err != nil {
		return err
	}
	if err := audit.PublishCheckpointKey(a.CheckpointPublicKey, key.Public()); err != nil {
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
	w, err := checkpointWriter(ctx, p, p.reg)
	if err != nil {
		return err
	}
	s.background = append(s.background, func(ctx context.Context) { w.Run(ctx, every) })
	// Closers run last-added-first: this one, added by the second service,
	// runs after every later service's closer, once nothing appends.
	s.closers = append(s.closers, w.Final)
	p.logger.Info("audit checkpoints on", "every", every.String(), "file", a.CheckpointFile)
	return nil
}

// checkpointAfterInit anchors what init recorded with a first checkpoint
// (nothing when checkpoints are off or the head has not moved).
func checkpointAfterInit(ctx context.Context, p *platform) error {
	if p.cfg.ResolvedAudit().CheckpointInterval() == 0 {
		return nil
	}
	w, err := checkpointWriter(ctx, p, nil)
	if err != nil {
		return err
	}
	if _, _, err := w.Checkpoint(ctx); err != nil {
		return fmt.Errorf("writing the first audit checkpoint: %w", err)
	}
	return nil
}

// checkpointWriter finds the audit checkpoint key on the token, publishes
// its public key next to the checkpoint file and returns the checkpoint
// writer over it; a missing key asks for `thiqa init`.
func checkpointWriter(ctx context.Context, p *platform, reg prometheus.Registerer) (*audit.CheckpointWriter, error) {
	a := p.cfg.ResolvedAudit()
	key, err := findServiceKey(ctx, p, "audit.checkpointKey", a.CheckpointKey, "audit checkpoint key", " (or set audit.checkpointEvery: 0)")
	if err != nil {
		return nil, err
	}
	return a.NewWriter(p.db, key, audit.CheckpointWriterOptions{Logger: p.logger, Registerer: reg})
}
