package main

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/thiqa/thiqa/cmd/thiqa/internal/config"
	"github.com/thiqa/thiqa/notify"
)

// wireNotify starts the notifications to citizens (notify section), when
// enabled: one loop tailing the audit log to the gateway.
func wireNotify(_ context.Context, p *platform, s *serving) error {
	if !p.cfg.Notify.Enabled {
		return nil
	}
	secretFile := p.cfg.Resolve(p.cfg.Notify.Webhook.SecretFile)
	secret, err := notify.ReadSecret(secretFile)
	if err != nil {
		return err
	}
	// The file is watched: a key written to it (write, then rename) signs
	// the notifications from the next round, without a restart.
	n, err := notify.New(notify.Options{Config: p.cfg.Notify, Secret: secret, SecretFile: secretFile, Store: p.db.Notify(),
		Logger: p.logger.With("service", "notify"), Registerer: p.reg})
	if err != nil {
		return err
	}
	s.background = append(s.background, n.Run)
	return nil
}

// runNotify dispatches `thiqa notify status|retire`.
func runNotify(ctx context.Context, env *cliEnv, args []string) error {
	if len(args) > 0 {
		switch args[0] {
		case "status":
			return notifyStatus(ctx, env, args[1:])
		case "retire":
			return notifyRetire(ctx, env, args[1:])
		}
	}
	return subcommandUsage(env, "notify", `usage:
  thiqa notify status --data DIR [--json]
  thiqa notify retire --data DIR`, args)
}

// notifyStatus is `thiqa notify status`: the notifier's cursor, its lease
// and lag, and whether notifications are on (notify.ReadStatus).
func notifyStatus(ctx context.Context, env *cliEnv, args []string) error {
	fs := newFlags("notify status", env)
	dir := fs.String("data", "", "data folder (required)")
	asJSON := fs.Bool("json", false, "print JSON")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	cfg, db, err := openFolderStore(ctx, env, *dir)
	if err != nil {
		return err
	}
	defer db.Close()
	s, err := notify.ReadStatus(ctx, db.Notify(), cfg.Notify.Enabled)
	if err != nil {
		return err
	}
	if *asJSON {
		return s.WriteJSON(env.stdout)
	}
	return s.WriteText(env.stdout)
}

// notifyRetire is `thiqa notify retire`: with notifications off for good,
// it deletes the notifier's cursor, so that `thiqa audit archive` no
// longer stops at it (notify.Retire).
func notifyRetire(ctx context.Context, env *cliEnv, args []string) error {
	fs := newFlags("notify retire", env)
	dir := fs.String("data", "", "data folder (required)")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	cfg, err := loadConfig(*dir)
	if err != nil {
		return err
	}
	// Only this folder's configuration is read: the other nodes' are
	// judged by the lease (notify.Retire).
	enabledErr := withExit(1, fmt.Errorf("notifications are on in %s (notify.enabled: true): turn them off first (notify.enabled: false, and restart every node) to retire the cursor for good, or let the notifier catch up (thiqa notify status, thiqa_notify_lag_records) and archive then", config.Path(*dir)))
	if cfg.Notify.Enabled {
		return enabledErr // before opening anything
	}
	p, closeStore, err := openOperatorStore(ctx, env, cfg)
	if err != nil {
		return err
	}
	defer closeStore()
	c, err := notify.Retire(ctx, p.db.Notify(), p.audit, operatorName(), cfg.Notify.Enabled)
	var lease *notify.LeaseError
	switch {
	case errors.Is(err, notify.ErrEnabled):
		return enabledErr
	case errors.As(err, &lease):
		return withExit(1, leaseRefusal(lease))
	case err != nil:
		return err
	case !c.Set:
		fmt.Fprintln(env.stdout, "notify retire: no notification cursor (the notifier never ran, or it was retired already); nothing to do")
		return nil
	}
	fmt.Fprintf(env.stdout, "notify retire: cursor at record %d retired (audit head %d): %d records after it are never told; the %s audit record says so\n",
		c.Seq, c.Head, c.Lag(), notify.ActionRetire)
	fmt.Fprintln(env.stdout, "notify retire: audit archive no longer waits for notifications; turned on again, the notifier starts at the audit head (what happens until then is not told)")
	return nil
}

// leaseRefusal is notify retire's refusal while a node holds the lease or
// held it too recently (notify.RetireQuiet): one line, said once.
func leaseRefusal(e *notify.LeaseError) error {
	until := e.Until.UTC().Format(time.RFC3339)
	if e.Live {
		return fmt.Errorf("%s holds the notification lease until %s: a node still runs with notifications on; turn them off there too (notify.enabled: false) and restart it, then retire", e.Holder, until)
	}
	return fmt.Errorf("the notification lease of %s lapsed at %s, less than %s ago: a node with notifications on may only be waiting to retry (the gateway out); check that every node has notify.enabled: false and was restarted, and retire again after %s",
		e.Holder, until, notify.RetireQuiet, e.Until.Add(notify.RetireQuiet).UTC().Format(time.RFC3339))
}
