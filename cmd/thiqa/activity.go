package main

import (
	"context"

	"github.com/thiqa/thiqa/identity/activity"
)

// wireActivity serves GET /api/v1/me/activity: a citizen's own audit
// records, over the store, behind auth.
func wireActivity(_ context.Context, p *platform, s *serving) error {
	if p.authn == nil {
		return nil
	}
	svc, err := activity.New(activity.Options{Store: p.db.Activity(), Audit: p.audit, Logger: p.logger.With("service", "activity")})
	if err != nil {
		return err
	}
	svc.Register(s.mux, p.authn.Require)
	return nil
}
