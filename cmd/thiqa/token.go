package main

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/thiqa/thiqa/cmd/thiqa/internal/config"
	"github.com/thiqa/thiqa/hsm"
	"github.com/thiqa/thiqa/internal/auth"
	"github.com/thiqa/thiqa/policies"
)

// maxDevTokenTTL bounds development tokens' lifetime.
const maxDevTokenTTL = 30 * 24 * time.Hour

// runToken prints a development API token signed by the development issuer
// key on the token. The token is alone on the last line of the output.
func runToken(ctx context.Context, env *cliEnv, args []string) error {
	fs := newFlags("token", env)
	dir := fs.String("data", "", "data folder (required)")
	subject := fs.String("subject", "", "subject: an agency's organizationIdentifier (NTROM-1234567), a citizen's civil number, or a staff name (required)")
	roleName := fs.String("role", "", "role: operator, registration-officer, agency or citizen (required)")
	ttl := fs.Duration("ttl", time.Hour, "lifetime of the token")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	role, err := policies.ParseRole(*roleName)
	if err != nil {
		return withExit(2, err)
	}
	if err := checkSubject(role, *subject); err != nil {
		return withExit(2, err)
	}
	if *ttl <= 0 || *ttl > maxDevTokenTTL {
		return withExit(2, fmt.Errorf("--ttl must be between 1s and %s", maxDevTokenTTL))
	}
	cfg, err := loadConfig(*dir)
	if err != nil {
		return err
	}
	tok, err := openToken(ctx, cfg, operatorLogger(env, cfg), nil)
	if err != nil {
		return err
	}
	defer tok.Close()
	token, err := mintDevToken(ctx, cfg, tok, *subject, role, *ttl)
	if err != nil {
		return err
	}
	fmt.Fprintln(env.stdout, token)
	return nil
}

// mintDevToken signs a development API token for subject and role with the
// development issuer key on the token: `thiqa token` and the load generators.
func mintDevToken(ctx context.Context, cfg *config.Config, tok *hsm.Token, subject string, role policies.Role, ttl time.Duration) (string, error) {
	if cfg.Keys.DevTokenIssuer == "" {
		return "", errors.New("keys.devTokenIssuer is not configured: this data folder issues no development tokens")
	}
	if cfg.Production {
		return "", errors.New("the configuration says production: true: development tokens are not minted in production")
	}
	label, err := cfg.HSM.KeyLabel(cfg.Keys.DevTokenIssuer)
	if err != nil {
		return "", err
	}
	key, err := tok.FindKey(ctx, label)
	if err != nil {
		return "", fmt.Errorf("development issuer key %q: %w", label, err)
	}
	return auth.MintDevToken(key, subject, role, ttl, time.Now())
}

// checkSubject validates a token subject's form for its role
// (policies.CheckCallerSubject).
func checkSubject(role policies.Role, subject string) error {
	if subject == "" {
		return errors.New("--subject is required")
	}
	return policies.CheckCallerSubject(role, subject)
}
