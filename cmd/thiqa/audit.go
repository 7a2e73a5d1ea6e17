package main

import (
	"cmp"
	"context"
	"encoding/hex"
	"errors"
	"flag"
	"fmt"
	"io"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/thiqa/thiqa/hsm"
	"github.com/thiqa/thiqa/internal/audit"
)

// runAudit dispatches `thiqa audit verify|report|archive|find`.
func runAudit(ctx context.Context, env *cliEnv, args []string) error {
	if len(args) > 0 && args[0] == "find" {
		return auditFind(ctx, env, args[1:])
	}
	if len(args) > 0 && args[0] == "report" {
		return auditReport(ctx, env, args[1:])
	}
	if len(args) > 0 && args[0] == "archive" {
		return auditArchive(ctx, env, args[1:])
	}
	if len(args) > 0 && args[0] == "compact" {
		return auditCompact(ctx, env, args[1:])
	}
	if len(args) == 0 || args[0] != "verify" {
		return subcommandUsage(env, "audit", `usage:
  thiqa audit verify --data DIR [--checkpoints FILE] [--checkpoint-key PEM] [--since SEQ]
  thiqa audit verify --ceremony DIR
  thiqa audit verify --archive FILE [--archive FILE2 ...] [--checkpoint-key PEM]
  thiqa audit verify --data DIR --archive FILE [--archive FILE2 ...] [--checkpoints FILE] [--checkpoint-key PEM]
  thiqa audit report --data DIR [--from 2026-11] [--to 2026-12] [--by month|day|total] [--json]
  thiqa audit find --data DIR [--seq N | --from-seq N] [--action A ...] [--object O] [--actor X] [--outcome success|failure|refused] [--since 2026-11|2026-11-05|RFC3339] [--until ...] [--limit 50] [--oldest-first] [--json] [--archive FILE ...]
  thiqa audit archive --data DIR (--through SEQ | --before RFC3339-TIME) --out FILE [--checkpoints FILE] [--checkpoint-key PEM] [--skip-undelivered]
  thiqa audit archive --data DIR --file-lost --out FILE [--checkpoints FILE] [--checkpoint-key PEM]
  thiqa audit compact --data DIR   (SQLite, thiqa serve stopped: give the space archived records left back to the disk)`, args)
	}
	fs := newFlags("audit verify", env)
	dir := fs.String("data", "", "data folder (required unless --ceremony)")
	ceremony := fs.String("ceremony", "", "verify a key-ceremony folder's log instead of a data folder's")
	cpFile := fs.String("checkpoints", "", "checkpoint file (default: the configuration's audit.checkpointFile), e.g. a copy kept off the host")
	cpKey := fs.String("checkpoint-key", "", "checkpoint public key, PEM (default: the configuration's audit.checkpointPublicKey)")
	since := fs.Int64("since", 0, "incremental: verify only from the newest signed checkpoint at or before this seq to the head (records before it are not re-checked); default: the whole chain from seq 1")
	var archives stringList
	fs.Var(&archives, "archive", "verify an archive file of `thiqa audit archive` (repeat): without --data offline, oldest first (consecutive files must chain); with --data also that the files are exactly the archived ranges the database records")
	if err := parseFlags(fs, args[1:]); err != nil {
		return err
	}
	sinceSet := false
	fs.Visit(func(f *flag.Flag) { sinceSet = sinceSet || f.Name == "since" })
	if sinceSet && *since < 1 {
		return withExit(2, fmt.Errorf("--since %d: give the seq of a record (1 or more)", *since))
	}
	if len(archives) > 0 && *dir != "" {
		if sinceSet || *ceremony != "" {
			return withExit(2, errors.New("--archive with --data verifies the whole live log and the archive files: --since and --ceremony do not apply"))
		}
		return verifyWithArchives(ctx, env, *dir, *cpFile, *cpKey, archives)
	}
	if len(archives) > 0 {
		if sinceSet || *ceremony != "" || *cpFile != "" {
			return withExit(2, errors.New("--archive verifies archive files on their own: give only --checkpoint-key with it (or --data to check them against the database)"))
		}
		ok, err := audit.VerifyArchiveFiles(archives, *cpKey, env.stdout)
		if err != nil {
			return err
		}
		if !ok {
			return withExit(1, errSilent)
		}
		return nil
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

// verifyWithArchives is `thiqa audit verify --data DIR --archive F…`: the
// live log as audit verify checks it, and the archive files against the
// archived ranges (audit.VerifyAllWithArchives).
func verifyWithArchives(ctx context.Context, env *cliEnv, dir, cpFile, cpKey string, archives []string) error {
	cfg, db, err := openFolderStore(ctx, env, dir)
	if err != nil {
		return err
	}
	defer db.Close()
	a := cfg.ResolvedAudit()
	ok, err := audit.VerifyAllWithArchives(ctx, db, cmp.Or(cpFile, a.CheckpointFile), cmp.Or(cpKey, a.CheckpointPublicKey), archives, env.stdout)
	if err != nil {
		return err
	}
	if !ok {
		return withExit(1, errSilent)
	}
	return nil
}

// auditArchive is `thiqa audit archive`: the oldest records into a
// verified archive file and out of the database (audit.Archive).
func auditArchive(ctx context.Context, env *cliEnv, args []string) error {
	fs := newFlags("audit archive", env)
	dir := fs.String("data", "", "data folder (required)")
	through := fs.Int64("through", 0, "archive up to the newest signed checkpoint at or before this seq")
	before := fs.String("before", "", "archive up to the newest signed checkpoint at or before the last record of the run, from the first live record on, of records all made strictly before this RFC 3339 time")
	out := fs.String("out", "", "archive file to write (must not exist; the same file again finishes an interrupted run)")
	cpFile := fs.String("checkpoints", "", "checkpoint file (default: the configuration's audit.checkpointFile)")
	cpKey := fs.String("checkpoint-key", "", "checkpoint public key, PEM (default: the configuration's audit.checkpointPublicKey)")
	fileLost := fs.Bool("file-lost", false, "the file of the archive still deleting its records is lost: write the range's records still live to --out and finish the range with it (the records already deleted are lost)")
	skipUndelivered := fs.Bool("skip-undelivered", false, "archive records the notifications to citizens have not reached yet (their citizens are never told; the audit record says how many); without it the archive stops at the notifier's cursor")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	o := audit.ArchiveOptions{Through: *through, Out: *out, Actor: operatorName(), SkipUndelivered: *skipUndelivered}
	switch {
	case *out == "":
		return withExit(2, errors.New("--out is required"))
	case *fileLost && *skipUndelivered:
		return withExit(2, errors.New("--file-lost finishes a range already recorded: --skip-undelivered does not apply"))
	case *fileLost && (*through != 0 || *before != ""):
		return withExit(2, errors.New("--file-lost finishes the unfinished archive: give neither --through nor --before"))
	case *fileLost:
	case (*through != 0) == (*before != ""):
		return withExit(2, errors.New("give exactly one of --through SEQ and --before TIME"))
	case *through < 0:
		return withExit(2, fmt.Errorf("--through %d: give the seq of a record (1 or more)", *through))
	case *before != "":
		t, err := time.Parse(time.RFC3339Nano, *before)
		if err != nil {
			return withExit(2, fmt.Errorf("--before: %w", err))
		}
		o.Before = t
	}
	cfg, err := loadConfig(*dir)
	if err != nil {
		return err
	}
	// It deletes archived records: the folder's shared lock, as the
	// other writing verbs (lockForOperator).
	release, err := lockForOperator(cfg)
	if err != nil {
		return err
	}
	defer release()
	db, err := openStore(ctx, cfg, operatorLogger(env, cfg))
	if err != nil {
		return err
	}
	defer db.Close()
	a := cfg.ResolvedAudit()
	o.CheckpointFile, o.CheckpointKeyFile = cmp.Or(*cpFile, a.CheckpointFile), cmp.Or(*cpKey, a.CheckpointPublicKey)
	o.NotifyEnabled = cfg.Notify.Enabled
	start := time.Now()
	if *fileLost {
		return recoverLostArchive(ctx, env, db, o)
	}
	res, err := audit.Archive(ctx, db, o)
	if err != nil {
		return err
	}
	r := res.Row
	switch {
	case res.AlreadyDone:
		fmt.Fprintf(env.stdout, "audit archive: %s already holds records %d to %d, archived on %s; nothing to do\n", *out, r.FirstSeq, r.LastSeq, r.Created.Format(time.RFC3339))
	case res.Resumed:
		fmt.Fprintf(env.stdout, "audit archive: finished the interrupted archive %s\n", *out)
	}
	fmt.Fprintf(env.stdout, "audit archive: %d records, seq %d to %d, in %s (SHA-256 %s, %d bytes); %d deleted from the live log in %s\n",
		res.Records, r.FirstSeq, r.LastSeq, *out, hex.EncodeToString(r.FileSHA256), res.Bytes, res.Deleted, time.Since(start).Round(time.Millisecond))
	switch {
	case res.NotifyCapped && !o.NotifyEnabled:
		// Nothing moves the cursor while notifications are off: "later"
		// would never come.
		fmt.Fprintf(env.stdout, "audit archive: stopped at record %d: notifications to citizens are off (notify.enabled) and the notifier stopped before the records after it; turn them on and run the archive again once it has caught up (thiqa_notify_lag_records); if they are off for good, retire the cursor (thiqa notify retire) or archive the rest with --skip-undelivered (their citizens are never told)\n", r.LastSeq)
	case res.NotifyCapped:
		fmt.Fprintf(env.stdout, "audit archive: stopped at record %d: the notifications to citizens have not reached the records after it (thiqa_notify_lag_records); run the archive again later\n", r.LastSeq)
	}
	if res.Undelivered > 0 {
		fmt.Fprintf(env.stdout, "audit archive: %d records were archived before the notifier reached them (--skip-undelivered): their citizens are not told; the %s audit record says so\n", res.Undelivered, audit.ArchiveAction)
	}
	fmt.Fprintf(env.stdout, "audit archive: keep the file on write-once storage with the checkpoint file; verify it with: thiqa audit verify --archive %s --checkpoint-key %s\n", *out, o.CheckpointKeyFile)
	sqliteSpaceNote(ctx, env, db, *dir)
	return nil
}

// recoverLostArchive is `thiqa audit archive --file-lost`
// (audit.RecoverLostArchive).
func recoverLostArchive(ctx context.Context, env *cliEnv, db audit.ArchiveStore, o audit.ArchiveOptions) error {
	res, err := audit.RecoverLostArchive(ctx, db, o)
	if err != nil {
		return err
	}
	r := res.Row
	if r.ReplacedFrom > r.FirstSeq {
		fmt.Fprintf(env.stdout, "audit archive: records %d to %d were deleted and are lost with %s (SHA-256 %s); an %s audit record says so\n",
			r.FirstSeq, r.ReplacedFrom-1, r.File, hex.EncodeToString(r.FileSHA256), audit.ArchiveLostAction)
	}
	if r.ReplacementFile != "" {
		fmt.Fprintf(env.stdout, "audit archive: records %d to %d, still live, are in %s (SHA-256 %s, %d bytes) in place of %s; %d deleted from the live log\n",
			r.ReplacedFrom, r.LastSeq, o.Out, hex.EncodeToString(r.ReplacementSHA256), res.Bytes, r.File, res.Deleted)
		fmt.Fprintf(env.stdout, "audit archive: keep the file on write-once storage; verify it with: thiqa audit verify --archive %s --checkpoint-key %s\n", o.Out, o.CheckpointKeyFile)
	} else {
		fmt.Fprintf(env.stdout, "audit archive: no record of the range %d-%d was live any more; nothing written\n", r.FirstSeq, r.LastSeq)
	}
	fmt.Fprintf(env.stdout, "audit archive: the range %d-%d is finished; later archives can run\n", r.FirstSeq, r.LastSeq)
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
	// Only the live log is counted.
	arch, err := audit.ReadArchivedPrefix(ctx, db)
	if err != nil {
		return err
	}
	if *fromFlag == "" {
		// Not "from 1970-01-01": from the first record, and when it was.
		a.FromFirstRecord = true
		if a.FirstRecord, _, err = audit.FirstRecordTime(ctx, db, arch.Below); err != nil {
			return err
		}
	}
	if err := a.WriteText(env.stdout); err != nil {
		return err
	}
	if arch.Below > 1 {
		fmt.Fprintf(env.stdout, "note: records 1 to %d are archived (thiqa audit archive) and not counted here\n", arch.Below-1)
	}
	return nil
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
