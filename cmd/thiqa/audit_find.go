package main

import (
	"context"
	"encoding/hex"
	"errors"
	"flag"
	"fmt"

	"github.com/thiqa/thiqa/internal/audit"
)

// auditFind is `thiqa audit find`: the records of the live log that match
// the flags, newest first (audit.Find, which records the search before
// anything is printed); with --archive, of the archive files given too
// (audit.FindWithArchives: each file must be one the database records).
// Exit 0 when something matched, 1 when nothing did (or the search could
// not be recorded), 2 on bad flags and on an archive file refused (not
// one the database records, corrupt or unreadable).
func auditFind(ctx context.Context, env *cliEnv, args []string) error {
	fs := newFlags("audit find", env)
	dir := fs.String("data", "", "data folder (required)")
	seq := fs.Int64("seq", 0, "the record with this seq")
	fromSeq := fs.Int64("from-seq", 0, "records with seq >= N (with --oldest-first: the first ones from N on)")
	var actions stringList
	fs.Var(&actions, "action", "records of this action, e.g. certificate.issue (repeat for any of several)")
	object := fs.String("object", "", "records of this object (a serial, a credential ID, an enrolment reference, a key URI)")
	actor := fs.String("actor", "", "records made by this actor (citizen:…, ra:…, cli:…, system)")
	outcome := fs.String("outcome", "", "records with this outcome (success, failure, refused)")
	since := fs.String("since", "", "records made at or after this time (inclusive): a month (2026-11), a day (2026-11-05), both UTC, or an RFC 3339 time")
	until := fs.String("until", "", "records made strictly before this time (exclusive), same forms as --since")
	limit := fs.Int("limit", audit.DefaultFindLimit, fmt.Sprintf("most records printed (1 to %d)", audit.MaxFindLimit))
	oldest := fs.Bool("oldest-first", false, "oldest first (the limit then keeps the oldest matches)")
	asJSON := fs.Bool("json", false, "print JSON Lines, one record a line, with the fields of an archive file's records")
	var archives stringList
	fs.Var(&archives, "archive", "search this archive file of `thiqa audit archive` too (repeat); it must be a file the database records (its SHA-256), checked before anything is printed")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	q, err := findQuery(fs, *seq, *fromSeq, actions, *object, *actor, *outcome, *since, *until, *limit, *oldest)
	if err != nil {
		return withExit(2, err)
	}
	if *dir == "" && len(archives) > 0 {
		return withExit(2, errors.New("--archive needs --data: the database says which files are the archive (their SHA-256) and records the search; to check a file on its own, use thiqa audit verify --archive FILE"))
	}
	if *dir == "" {
		return withExit(2, errors.New("--data is required"))
	}
	cfg, err := loadConfig(*dir)
	if err != nil {
		return err
	}
	p, closeStore, err := openOperatorStore(ctx, env, cfg)
	if err != nil {
		return err
	}
	defer closeStore()
	var found audit.Found
	if len(archives) > 0 {
		found, err = findWithArchives(ctx, p, q, archives)
	} else {
		found, err = audit.Find(ctx, p.db, p.db, p.audit, operatorName(), q)
	}
	if err != nil {
		return err
	}
	if *asJSON {
		err = audit.WriteRecordsJSON(env.stdout, found.Records)
	} else {
		err = audit.WriteRecordsText(env.stdout, found.Records)
	}
	if err != nil {
		return err
	}
	if found.More {
		fmt.Fprintf(env.stderr, "audit find: more records match; the first %d are printed (--limit)\n", q.Limit)
	}
	switch {
	case len(archives) > 0:
		for _, g := range found.NotSearched {
			if g.Lost {
				fmt.Fprintf(env.stderr, "note: records %d to %d were deleted and their archive file %s (SHA-256 %s) is lost: not searched\n", g.FirstSeq, g.LastSeq, g.File, hex.EncodeToString(g.SHA256))
				continue
			}
			fmt.Fprintf(env.stderr, "note: records %d to %d are archived in %s (SHA-256 %s), not given: not searched (add --archive with that file)\n", g.FirstSeq, g.LastSeq, g.File, hex.EncodeToString(g.SHA256))
		}
	case found.ArchivedBelow > 1:
		fmt.Fprintf(env.stderr, "note: records 1 to %d are archived (thiqa audit archive) and not searched here\n", found.ArchivedBelow-1)
	}
	if len(found.Records) == 0 {
		return withExit(1, errSilent)
	}
	return nil
}

// findWithArchives runs the search over the live log and the archive
// files (audit.FindWithArchives), their checkpoints checked with the
// deployment's checkpoint key. A file refused, corrupt or unreadable exits
// 2; a search that could not be run or recorded exits 1, as without
// --archive.
func findWithArchives(ctx context.Context, p *platform, q audit.Query, archives []string) (audit.Found, error) {
	pub, err := audit.ReadCheckpointKey(p.cfg.ResolvedAudit().CheckpointPublicKey)
	if err != nil {
		return audit.Found{}, withExit(2, fmt.Errorf("--archive: the archive files' checkpoints are checked with it: %w", err))
	}
	found, err := audit.FindWithArchives(ctx, p.db, p.db, p.audit, operatorName(), q, archives, pub)
	switch {
	case errors.Is(err, audit.ErrArchiveRefused), errors.Is(err, audit.ErrArchiveCorrupt), errors.Is(err, audit.ErrArchiveUnreadable):
		return found, withExit(2, err)
	case err != nil:
		return found, withExit(1, err)
	}
	return found, nil
}

// findQuery builds the query of the flags, checked (audit.Query.Check).
func findQuery(fs *flag.FlagSet, seq, fromSeq int64, actions []string, object, actor, outcome, since, until string, limit int, oldest bool) (audit.Query, error) {
	set := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
	q := audit.Query{Seq: seq, FromSeq: fromSeq, Actions: actions, Object: object, Actor: actor, Outcome: outcome, Limit: limit, OldestFirst: oldest}
	switch {
	case set["seq"] && seq < 1:
		return q, fmt.Errorf("--seq %d: give the seq of a record (1 or more)", seq)
	case set["from-seq"] && fromSeq < 1:
		return q, fmt.Errorf("--from-seq %d: give the seq of a record (1 or more)", fromSeq)
	case set["limit"] && limit < 1:
		return q, fmt.Errorf("--limit %d: want 1 to %d", limit, audit.MaxFindLimit)
	}
	var err error
	if since != "" {
		if q.Since, err = audit.ParseDate(since); err != nil {
			return q, fmt.Errorf("--since: %w", err)
		}
	}
	if until != "" {
		if q.Until, err = audit.ParseDate(until); err != nil {
			return q, fmt.Errorf("--until: %w", err)
		}
	}
	if err := q.Check(); err != nil {
		return q, err
	}
	return q, nil
}
