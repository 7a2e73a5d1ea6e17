package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/user"

	"github.com/thiqa/thiqa/ca/revocation"
	"github.com/thiqa/thiqa/cmd/thiqa/internal/config"
	"github.com/thiqa/thiqa/identity"
)

const oidcUsage = `usage:
  thiqa oidc client add --data DIR --name N --redirect-uri U [--redirect-uri U2] [--allow-civil-number] [--sector S] (--jwks-file F | --tls-subject DN)
  thiqa oidc client list --data DIR
  thiqa oidc mobile enrol --data DIR --credential ID [--pin-file F | --pin-env VAR]`

// runOIDC dispatches the digital-ID operator commands.
func runOIDC(ctx context.Context, env *cliEnv, args []string) error {
	if len(args) < 2 {
		return subcommandUsage(env, "oidc", oidcUsage, args)
	}
	switch args[0] + " " + args[1] {
	case "client add":
		return oidcClientAdd(ctx, env, args[2:])
	case "client list":
		return oidcClientList(ctx, env, args[2:])
	case "mobile enrol":
		return oidcMobileEnrol(ctx, env, args[2:])
	}
	return subcommandUsage(env, "oidc", oidcUsage, args)
}

// openIdentityStore opens the data folder's store and audit log for an
// operator command (openOperatorStore).
func openIdentityStore(ctx context.Context, env *cliEnv, dir string) (*platform, func(), error) {
	cfg, err := loadConfig(dir)
	if err != nil {
		return nil, nil, err
	}
	if !identityOn(cfg) {
		return nil, nil, errors.New("this data folder has no digital-ID service (identity and ca sections of thiqa.yaml)")
	}
	return openOperatorStore(ctx, env, cfg)
}

func operatorName() string {
	if u, err := user.Current(); err == nil {
		return "cli:" + u.Username
	}
	return "cli:unknown"
}

// oidcClientAdd registers a portal and prints its client_id.
func oidcClientAdd(ctx context.Context, env *cliEnv, args []string) error {
	fs := newFlags("oidc client add", env)
	dir := fs.String("data", "", "data folder (required)")
	name := fs.String("name", "", "portal name shown to citizens (required)")
	var uris stringList
	fs.Var(&uris, "redirect-uri", "registered redirect URI, exact match (repeatable, at least one)")
	civil := fs.Bool("allow-civil-number", false, "sub is the civil number instead of a pairwise identifier")
	sector := fs.String("sector", "", "sector identifier shared by portals that see the same pairwise sub (default: host of the redirect URIs; required when they are on several hosts)")
	jwksFile := fs.String("jwks-file", "", "the portal's public JWK set for private_key_jwt")
	tlsSubject := fs.String("tls-subject", "", "subject DN of the portal's TLS client certificate for tls_client_auth (as in openssl x509 -subject -nameopt RFC2253)")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if *name == "" || len(uris) == 0 || (*jwksFile == "") == (*tlsSubject == "") {
		return withExit(2, errors.New("--name, at least one --redirect-uri, and exactly one of --jwks-file or --tls-subject are required"))
	}
	var jwks []byte
	if *jwksFile != "" {
		raw, err := os.ReadFile(*jwksFile)
		if err != nil {
			return fmt.Errorf("reading --jwks-file: %w", err)
		}
		jwks = raw
	}
	c, err := identity.NewClient(identity.ClientRegistration{Name: *name, RedirectURIs: uris, AllowCivilNumber: *civil, Sector: *sector, JWKS: jwks, TLSSubject: *tlsSubject})
	var bad *identity.RegistrationError
	if errors.As(err, &bad) {
		return withExit(2, err)
	}
	if err != nil {
		return err
	}
	p, closeStore, err := openIdentityStore(ctx, env, *dir)
	if err != nil {
		return err
	}
	defer closeStore()
	if err := identity.RegisterClient(ctx, p.db.Identity(), p.audit, c, operatorName()); err != nil {
		return err
	}
	fmt.Fprintln(env.stdout, c.ID)
	return nil
}

// oidcClientList prints the registered portals.
func oidcClientList(ctx context.Context, env *cliEnv, args []string) error {
	fs := newFlags("oidc client list", env)
	dir := fs.String("data", "", "data folder (required)")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	p, closeStore, err := openIdentityStore(ctx, env, *dir)
	if err != nil {
		return err
	}
	defer closeStore()
	cs, err := p.db.Identity().Clients(ctx)
	if err != nil {
		return err
	}
	return identity.WriteClientTable(env.stdout, cs)
}

// oidcMobileEnrol activates a citizen's remote authentication credential
// (a citizen-auth certificate issued with keyInHSM) as mobile ID. It prints
// a one-time activation code, which the citizen redeems with a login PIN of
// their own (POST /api/v1/credentials/{id}/pin/activate): the operator
// never knows the PIN. --pin-file and --pin-env set the PIN instead, read
// from a file or the environment, never from the command line: for tests
// and load generators only, with a warning.
func oidcMobileEnrol(ctx context.Context, env *cliEnv, args []string) error {
	fs := newFlags("oidc mobile enrol", env)
	dir := fs.String("data", "", "data folder (required)")
	cred := fs.String("credential", "", "credential ID returned by the CA for a keyInHSM citizen-auth certificate (required)")
	pinFile := fs.String("pin-file", "", "tests only: file holding a login PIN to set (the operator then knows it)")
	pinEnv := fs.String("pin-env", "", "tests only: environment variable holding a login PIN to set")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if *cred == "" || (*pinFile != "" && *pinEnv != "") {
		return withExit(2, errors.New("--credential is required, with at most one of --pin-file or --pin-env"))
	}
	p, closeStore, err := openIdentityStore(ctx, env, *dir)
	if err != nil {
		return err
	}
	defer closeStore()
	e, err := mobileEnrolment(p)
	if err != nil {
		return err
	}
	if *pinFile == "" && *pinEnv == "" {
		civil, a, err := identity.EnrolMobileIDForActivation(ctx, e, *cred, operatorName())
		if err != nil {
			return err
		}
		return identity.WriteEnrolled(env.stdout, *cred, civil, &a)
	}
	loginPIN, err := config.ReadSecret(*pinFile, *pinEnv)
	if err != nil {
		return fmt.Errorf("login PIN: %w", err)
	}
	p.logger.Warn(
		"the operator sets the citizen's login PIN (--pin-file/--pin-env): for tests only, this is no sole control; enrol without it to hand out an activation code")
	civil, err := identity.EnrolMobileID(ctx, e, *cred, loginPIN, operatorName())
	if err != nil {
		return err
	}
	return identity.WriteEnrolled(env.stdout, *cred, civil, nil)
}

// mobileEnrolment is what identity.EnrolMobileID and
// EnrolMobileIDForActivation need, over the data folder's store.
func mobileEnrolment(p *platform) (identity.Enrolment, error) {
	e, err := p.cfg.Identity.Enrolment(p.db.Identity(), revocation.NewChecker(p.db.Certificates(nil), 0, nil), p.audit)
	if err != nil {
		return e, err
	}
	// A certificate of another country's number is refused: as a mobile
	// ID it could never log in here.
	e.Country = p.cfg.CA.Country()
	return e, nil
}
