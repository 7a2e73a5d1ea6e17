package main

import (
	"context"

	"github.com/thiqa/thiqa/notify"
)

// wireNotify starts the notifications to citizens (notify section), when
// enabled: one loop tailing the audit log to the gateway.
func wireNotify(_ context.Context, p *platform, s *serving) error {
	if !p.cfg.Notify.Enabled {
		return nil
	}
	secret, err := notify.ReadSecret(p.cfg.Resolve(p.cfg.Notify.Webhook.SecretFile))
	if err != nil {
		return err
	}
	n, err := notify.New(notify.Options{Config: p.cfg.Notify, Secret: secret, Store: p.db.Notify(),
		Logger: p.logger.With("service", "notify"), Registerer: p.reg})
	if err != nil {
		return err
	}
	s.background = append(s.background, n.Run)
	return nil
}
