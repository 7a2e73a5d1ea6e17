package main

import (
	"context"
	"crypto/rand"
	"crypto/x509"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/user"
	"strings"
	"text/tabwriter"
	"time"
	"unicode/utf8"

	"github.com/go-jose/go-jose/v4"

	"github.com/thiqa/thiqa/ca"
	"github.com/thiqa/thiqa/ca/revocation"
	"github.com/thiqa/thiqa/cmd/thiqa/internal/config"
	"github.com/thiqa/thiqa/identity"
	"github.com/thiqa/thiqa/internal/audit"
	"github.com/thiqa/thiqa/internal/pin"
	"github.com/thiqa/thiqa/policies"
	"github.com/thiqa/thiqa/store"
)

const oidcUsage = `usage:
  thiqa oidc client add --data DIR --name N --redirect-uri U [--redirect-uri U2] [--allow-civil-number] [--sector S] (--jwks-file F | --tls-subject DN)
  thiqa oidc client list --data DIR
  thiqa oidc mobile enrol --data DIR --credential ID (--pin-file F | --pin-env VAR)`

// runOIDC dispatches the digital-ID operator commands.
func runOIDC(ctx context.Context, env *cliEnv, args []string) error {
	if len(args) < 2 {
		return withExit(2, errors.New(oidcUsage))
	}
	switch args[0] + " " + args[1] {
	case "client add":
		return oidcClientAdd(ctx, env, args[2:])
	case "client list":
		return oidcClientList(ctx, env, args[2:])
	case "mobile enrol":
		return oidcMobileEnrol(ctx, env, args[2:])
	}
	return withExit(2, errors.New(oidcUsage))
}

// stringList is a repeatable flag.
type stringList []string

func (s *stringList) String() string     { return strings.Join(*s, ",") }
func (s *stringList) Set(v string) error { *s = append(*s, v); return nil }

// openIdentityStore opens the data folder's store and audit log for an
// operator command.
func openIdentityStore(ctx context.Context, env *cliEnv, dir string) (*config.Config, *store.DB, *audit.Log, error) {
	cfg, err := loadConfig(dir)
	if err != nil {
		return nil, nil, nil, err
	}
	if !identityOn(cfg) {
		return nil, nil, nil, errors.New("this data folder has no digital-ID service (identity and ca sections of thiqa.yaml)")
	}
	logger := newLogger(env.stderr, config.LogConfig{Level: "warn", Format: cfg.Log.Format})
	db, err := openStore(ctx, cfg, logger)
	if err != nil {
		return nil, nil, nil, err
	}
	return cfg, db, newAuditLog(db, logger, nil), nil
}

func operatorName() string {
	if u, err := user.Current(); err == nil {
		return "cli:" + u.Username
	}
	return "cli:unknown"
}

// parseClientJWKS reads a client's public key set: at least one signing
// key, no private keys.
func parseClientJWKS(raw []byte) ([]byte, error) {
	var set jose.JSONWebKeySet
	if err := json.Unmarshal(raw, &set); err != nil {
		return nil, fmt.Errorf("JWK set: want a JWK set: %w", err)
	}
	if len(set.Keys) == 0 {
		return nil, errors.New("JWK set: the key set is empty")
	}
	for i, k := range set.Keys {
		if !k.Valid() {
			return nil, fmt.Errorf("JWK set: key %d is invalid", i)
		}
		if !k.IsPublic() {
			return nil, fmt.Errorf("JWK set: key %d is a private key; register the public key only", i)
		}
		if k.Use != "" && k.Use != "sig" {
			return nil, fmt.Errorf("JWK set: key %d has use %q, want sig", i, k.Use)
		}
	}
	return json.Marshal(set)
}

// oidcClientAdd registers a portal and prints its client_id.
func oidcClientAdd(ctx context.Context, env *cliEnv, args []string) error {
	fs := newFlags("oidc client add", env)
	dir := fs.String("data", "", "data folder (required)")
	name := fs.String("name", "", "portal name shown to citizens (required)")
	var uris stringList
	fs.Var(&uris, "redirect-uri", "registered redirect URI, exact match (repeatable, at least one)")
	civil := fs.Bool("allow-civil-number", false, "sub is the civil number instead of a pairwise identifier")
	sector := fs.String("sector", "", "sector identifier shared by portals that see the same pairwise sub (default: host of the first redirect URI)")
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
	c, err := newClient(ClientRegistration{Name: *name, RedirectURIs: uris, AllowCivilNumber: *civil, Sector: *sector, JWKS: jwks, TLSSubject: *tlsSubject})
	if err != nil {
		return withExit(2, err)
	}
	_, db, log, err := openIdentityStore(ctx, env, *dir)
	if err != nil {
		return err
	}
	defer db.Close()
	defer log.Close()
	if err := registerClient(ctx, db.Identity(), log, c, operatorName()); err != nil {
		return err
	}
	fmt.Fprintln(env.stdout, c.ID)
	return nil
}

// ClientRegistration is what an operator gives to register a portal (the
// JSON body of POST /api/v1/oidc/clients).
type ClientRegistration struct {
	Name             string          `json:"name"`
	RedirectURIs     []string        `json:"redirectURIs"`
	AllowCivilNumber bool            `json:"allowCivilNumber,omitempty"`
	Sector           string          `json:"sector,omitempty"`
	JWKS             json.RawMessage `json:"jwks,omitempty"`
	TLSSubject       string          `json:"tlsSubject,omitempty"`
}

// newClient validates a registration and builds the client with a fresh ID.
func newClient(r ClientRegistration) (*identity.Client, error) {
	if r.Name == "" || len(r.Name) > 200 || len(r.RedirectURIs) == 0 || len(r.RedirectURIs) > 20 || (len(r.JWKS) == 0) == (r.TLSSubject == "") {
		return nil, errors.New("a name, 1 to 20 redirect URIs, and exactly one of a JWK set or a TLS subject are required")
	}
	for _, u := range r.RedirectURIs {
		if err := checkRedirectURI(u); err != nil {
			return nil, err
		}
	}
	c := &identity.Client{Name: r.Name, RedirectURIs: r.RedirectURIs, AllowCivilNumber: r.AllowCivilNumber, SectorIdentifier: r.Sector, Created: time.Now().UTC()}
	if len(r.JWKS) > 0 {
		set, err := parseClientJWKS(r.JWKS)
		if err != nil {
			return nil, err
		}
		c.JWKS, c.AuthMethod = set, identity.AuthPrivateKeyJWT
	} else {
		c.AuthMethod, c.TLSSubject = identity.AuthTLSClient, r.TLSSubject
	}
	var b [12]byte
	_, _ = rand.Read(b[:])
	c.ID = "oidc-" + hex.EncodeToString(b[:])
	return c, nil
}

// registerClient stores the client and records it in the audit log.
func registerClient(ctx context.Context, st clientRegistrar, log *audit.Log, c *identity.Client, actor string) error {
	if err := st.AddClient(ctx, c); err != nil {
		return err
	}
	if _, err := log.Append(ctx, audit.Entry{Actor: actor, Action: "oidc.client.add", Object: c.ID, Outcome: audit.OutcomeSuccess,
		Details: map[string]any{"name": c.Name, "redirectURIs": c.RedirectURIs, "allowCivilNumber": c.AllowCivilNumber, "authMethod": c.AuthMethod, "sector": c.SectorIdentifier}}); err != nil {
		return fmt.Errorf("writing audit record: %w", err)
	}
	return nil
}

// oidcClientList prints the registered portals.
func oidcClientList(ctx context.Context, env *cliEnv, args []string) error {
	fs := newFlags("oidc client list", env)
	dir := fs.String("data", "", "data folder (required)")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	_, db, log, err := openIdentityStore(ctx, env, *dir)
	if err != nil {
		return err
	}
	defer db.Close()
	defer log.Close()
	cs, err := db.Identity().Clients(ctx)
	if err != nil {
		return err
	}
	tw := tabwriter.NewWriter(env.stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "CLIENT_ID\tNAME\tAUTH\tCIVIL_NUMBER\tREDIRECT_URIS")
	for _, c := range cs {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%t\t%s\n", c.ID, c.Name, c.AuthMethod, c.AllowCivilNumber, strings.Join(c.RedirectURIs, " "))
	}
	return tw.Flush()
}

// oidcMobileEnrol activates a citizen's remote authentication credential
// (a citizen-auth certificate issued with keyInHSM) as mobile ID with a
// login PIN read from a file or the environment, never from the command line.
func oidcMobileEnrol(ctx context.Context, env *cliEnv, args []string) error {
	fs := newFlags("oidc mobile enrol", env)
	dir := fs.String("data", "", "data folder (required)")
	cred := fs.String("credential", "", "credential ID returned by the CA for a keyInHSM citizen-auth certificate (required)")
	pinFile := fs.String("pin-file", "", "file holding the citizen's login PIN")
	pinEnv := fs.String("pin-env", "", "environment variable holding the citizen's login PIN")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if *cred == "" || (*pinFile == "") == (*pinEnv == "") {
		return withExit(2, errors.New("--credential and exactly one of --pin-file or --pin-env are required"))
	}
	p, err := config.ReadSecret(*pinFile, *pinEnv)
	if err != nil {
		return fmt.Errorf("login PIN: %w", err)
	}
	cfg, db, log, err := openIdentityStore(ctx, env, *dir)
	if err != nil {
		return err
	}
	defer db.Close()
	defer log.Close()
	civil, err := enrolMobileID(ctx, cfg, db, log, *cred, p, operatorName())
	if err != nil {
		return err
	}
	fmt.Fprintf(env.stdout, "mobile ID enrolled: credential %s, civil number %s\n", *cred, civil)
	return nil
}

// enrolMobileID checks that credential is an issued, unrevoked, unexpired
// citizen-auth certificate with its key on the token, records the
// enrolment and sets the login PIN. It returns the civil number.
func enrolMobileID(ctx context.Context, cfg *config.Config, db *store.DB, log *audit.Log, credential, p, actor string) (string, error) {
	rec, err := db.Certificates(nil).CertificateByCredential(ctx, credential)
	if errors.Is(err, ca.ErrNotFound) {
		return "", fmt.Errorf("credential %s: no issued certificate", credential)
	}
	if err != nil {
		return "", err
	}
	if rec.Profile != policies.ProfileCitizenAuth {
		return "", fmt.Errorf("credential %s has profile %s; mobile ID needs %s", credential, rec.Profile, policies.ProfileCitizenAuth)
	}
	cert, err := x509.ParseCertificate(rec.DER)
	if err != nil {
		return "", err
	}
	if time.Now().After(cert.NotAfter) {
		return "", fmt.Errorf("credential %s: certificate expired", credential)
	}
	st, err := revocation.NewChecker(db.Certificates(nil), 0, nil).Status(ctx, cert)
	if err != nil {
		return "", err
	}
	if st.Revoked {
		return "", fmt.Errorf("credential %s: certificate revoked", credential)
	}
	sn := cert.Subject.SerialNumber
	i := strings.IndexByte(sn, '-')
	if !strings.HasPrefix(sn, "IDC") || i < 0 {
		return "", fmt.Errorf("credential %s: certificate subject has no civil number", credential)
	}
	civil := sn[i+1:]
	params := cfg.Identity.PINParams()
	if n := utf8.RuneCountInString(p); n < params.MinLength || n > params.MaxLength {
		return "", fmt.Errorf("the login PIN must have %d to %d characters", params.MinLength, params.MaxLength)
	}
	mgr, err := pin.New(db.Identity(), params)
	if err != nil {
		return "", err
	}
	// An enrolment left without a PIN (interrupted) is completed below;
	// one with a PIN is refused by Set (ErrAlreadySet).
	if err := db.Identity().EnrolMobileID(ctx, credential, civil, time.Now()); err != nil && !errors.Is(err, identity.ErrConflict) {
		return "", err
	}
	if err := mgr.Set(ctx, credential, p); err != nil {
		return "", fmt.Errorf("setting the login PIN: %w", err)
	}
	if _, err := log.Append(ctx, audit.Entry{Actor: actor, Action: "oidc.mobile.enrol", Object: credential, Outcome: audit.OutcomeSuccess,
		Details: map[string]any{"civilNumber": civil, "certSerial": rec.Serial}}); err != nil {
		return "", fmt.Errorf("writing audit record: %w", err)
	}
	return civil, nil
}
