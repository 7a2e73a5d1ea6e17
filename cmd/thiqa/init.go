package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/thiqa/thiqa/ca/hierarchy"
	"github.com/thiqa/thiqa/cmd/thiqa/internal/config"
	"github.com/thiqa/thiqa/hsm"
	"github.com/thiqa/thiqa/hsm/keyring"
	"github.com/thiqa/thiqa/internal/atomicfile"
	"github.com/thiqa/thiqa/internal/audit"
	"github.com/thiqa/thiqa/internal/auth"
)

// runInit prepares a data folder. It is idempotent: existing configuration,
// tokens and keys are kept, never overwritten. When it fails on a folder it
// created, it removes the folder again, so nothing is left half-created.
func runInit(ctx context.Context, env *cliEnv, args []string) (err error) {
	fs := newFlags("init", env)
	dir := fs.String("data", "", "data folder to create or complete (required)")
	from := fs.String("config", "", "YAML configuration to install as DIR/thiqa.yaml when the folder has none")
	rootCertFile := fs.String("root-cert", "", "certificate (PEM) of a root whose key stays offline (the key ceremony, docs/ceremony.md, or an existing national root): the token never holds it; the issuing CAs get keys and CSRs (DIR/ca/{name}.csr)")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if *dir == "" {
		return withExit(2, errors.New("--data DIR is required"))
	}
	abs, err := filepath.Abs(*dir)
	if err != nil {
		return fmt.Errorf("data folder: %w", err)
	}

	cfg, haveConfig, err := config.Initial(abs, *from)
	if err != nil {
		return err
	}
	rootCert, err := offlineRootFor(cfg, haveConfig, *rootCertFile)
	if err != nil {
		return err
	}
	// Check what can be checked before anything is created.
	if err := cfg.HSM.CheckModule(); err != nil {
		return err
	}
	if cfg.HSM.SoftHSM == nil {
		if _, err := cfg.PIN(); err != nil {
			return err
		}
	}
	if err := refuseJoin(abs, cfg); err != nil {
		return err
	}

	created := atomicfile.NewCreated(abs)
	defer func() {
		if err != nil {
			created.Undo()
		}
	}()
	if err := os.MkdirAll(abs, 0o700); err != nil {
		return fmt.Errorf("creating data folder: %w", err)
	}
	made, err := cfg.HSM.PrepareSoftHSM(cfg.Resolve, "thiqa init")
	created.Add(made...)
	if err != nil {
		return err
	}
	if !haveConfig {
		raw, err := cfg.Marshal()
		if err != nil {
			return err
		}
		if err := atomicfile.WriteNew(config.Path(abs), raw, 0o600); err != nil {
			return fmt.Errorf("writing configuration: %w", err)
		}
		created.Add(config.Path(abs))
	}
	if rootCert != nil {
		made, err := installRootCert(cfg, rootCert)
		created.Add(made)
		if err != nil {
			return err
		}
	}
	if err := cfg.HSM.UseSoftHSMConf(cfg.Resolve); err != nil {
		return err
	}

	logger := newLogger(env.stderr, cfg.Log)
	reg := prometheus.NewRegistry()
	p, closeAll, err := openPlatform(ctx, cfg, logger, reg, openOrCreateToken)
	if err != nil {
		return err
	}
	defer closeAll()
	var report bytes.Buffer
	var pending error
	for _, step := range initSteps() {
		if err := step.run(ctx, p, &report); errors.Is(err, hierarchy.ErrPending) {
			pending = err // the next steps need the issuing CAs
			break
		} else if err != nil {
			return fmt.Errorf("%s: %w", step.name, err)
		}
	}
	if _, err := p.audit.Append(ctx, audit.Entry{
		Actor: "thiqa-init", Action: "data.init", Object: abs, Outcome: "success",
		Details: map[string]any{"token": cfg.HSM.TokenLabel, "store": cfg.Store.Driver, "version": version},
	}); err != nil {
		return fmt.Errorf("writing audit record: %w", err)
	}
	if err := checkpointAfterInit(ctx, p); err != nil {
		return err
	}

	if pending != nil {
		fmt.Fprintf(env.stdout, "data folder %s prepared: %v\n  token  %s (%s)\n  store  %s\n%s", abs, pending, cfg.HSM.TokenLabel, cfg.HSM.Module, cfg.Store.Driver, report.String())
		fmt.Fprintf(env.stdout, "next: have the offline root certify each CSR (thiqa ca sign --ceremony DIR --csr %s/ca/NAME.csr --name NAME --out NAME.pem),\n"+
			"install each certificate (thiqa ca import --data %s --name NAME --cert NAME.pem) and the root CRL (thiqa ca crl import --data %s --crl root.crl),\n"+
			"then run thiqa init --data %s again (docs/ceremony.md)\n", abs, abs, abs, abs)
		return nil
	}
	fmt.Fprintf(env.stdout, "data folder %s ready\n  token  %s (%s)\n  store  %s\n%sserve it with: thiqa serve --data %s\n",
		abs, cfg.HSM.TokenLabel, cfg.HSM.Module, cfg.Store.Driver, report.String(), abs)
	return nil
}

// errJoinByInit: `thiqa init` was run on a folder without the PIN file of
// a SoftHSM token that exists already, as on a node meant to join a
// cluster.
var errJoinByInit = errors.New("thiqa init does not join a cluster")

// errPINFileLost: `thiqa init` was run on a data folder whose own SoftHSM
// token exists but whose user PIN file does not.
var errPINFileLost = errors.New("the PIN file of this folder's SoftHSM token is lost")

// refuseJoin stops `thiqa init` on dir before it writes anything or logs
// in when the configuration's SoftHSM token exists already but its user
// PIN file does not (a node set up to join a cluster with a folder of its
// own, errJoinByInit, or a folder that lost its PIN file, errPINFileLost):
// init would write a fresh PIN and log in with it, and the token would
// count that failed login. Looking for the token only lists the
// module's slots. A PIN from the environment (pinEnv), a PIN file that is
// there, a vendor HSM and a token that does not exist yet go on as before.
func refuseJoin(dir string, cfg *config.Config) error {
	h := cfg.HSM
	if h.SoftHSM == nil || h.PINEnv != "" {
		return nil
	}
	pinFile := cfg.Resolve(h.PINFile)
	if _, err := os.Stat(pinFile); !errors.Is(err, os.ErrNotExist) {
		return nil // there (or unreadable, which the login reports)
	}
	conf := cfg.Resolve(h.SoftHSM.Conf)
	where := "SoftHSM configuration " + conf
	// init would write a configuration naming tokenDir; one there already
	// names its own token folder.
	tokens, haveConf := cfg.Resolve(h.SoftHSM.TokenDir), true
	if _, err := os.Stat(conf); errors.Is(err, os.ErrNotExist) {
		haveConf = false
	} else if tokens, err = hsm.SoftHSMTokenDir(conf); err != nil {
		return fmt.Errorf("looking for SoftHSM token %q: %w", h.TokenLabel, err)
	}
	// No token folder yet (init creates it, and SoftHSM does not start
	// without it), or an empty one: a new token.
	if entries, err := os.ReadDir(tokens); tokens == "" || err != nil || len(entries) == 0 {
		return nil
	}
	if !haveConf {
		tmp, err := os.MkdirTemp("", "thiqa-init-")
		if err != nil {
			return fmt.Errorf("looking for SoftHSM token %q: %w", h.TokenLabel, err)
		}
		defer os.RemoveAll(tmp)
		conf, where = filepath.Join(tmp, "softhsm2.conf"), "token folder "+tokens
		if err := os.WriteFile(conf, hsm.SoftHSMConf(tokens, "thiqa init"), 0o600); err != nil {
			return fmt.Errorf("looking for SoftHSM token %q: %w", h.TokenLabel, err)
		}
	}
	// SoftHSM reads SOFTHSM2_CONF when the module is initialised;
	// TokenPresent finalises it again, and init sets the variable anew.
	if err := os.Setenv("SOFTHSM2_CONF", conf); err != nil {
		return fmt.Errorf("setting SOFTHSM2_CONF: %w", err)
	}
	present, err := hsm.TokenPresent(h.Module, h.TokenLabel)
	if err != nil {
		return fmt.Errorf("looking for SoftHSM token %q: %w", h.TokenLabel, err)
	}
	if !present {
		return nil
	}
	if rel, err := filepath.Rel(dir, tokens); err == nil && filepath.IsLocal(rel) {
		// The folder's own token: its PIN file was lost, no node joins.
		return fmt.Errorf("%w: the SoftHSM token %q of this folder exists (%s) but its PIN file %s is missing, and a new PIN would be refused by the token. "+
			"Put the PIN files back from the token's backup (docs/operations.md, \"Back up and restore\"); nothing was written",
			errPINFileLost, h.TokenLabel, where, pinFile)
	}
	return fmt.Errorf("%w: the SoftHSM token %q exists already (%s) but %s is missing, and a new PIN would be refused by the token. "+
		"To add a node, copy the whole data folder of the first node to %s, secrets included "+
		"(docs/operations.md, \"Adding a node with a folder of its own\"); nothing was written",
		errJoinByInit, h.TokenLabel, where, pinFile, dir)
}

// openOrCreateToken logs in to the configured token, creating it first when
// Thiqa manages a SoftHSM token that does not exist yet.
func openOrCreateToken(ctx context.Context, cfg *config.Config, logger *slog.Logger, reg prometheus.Registerer) (*hsm.Token, error) {
	o := tokenOptions(cfg, logger, reg)
	o.Create, o.CreatedBy, o.ReadSecret = true, "thiqa init", config.ReadSecret
	return cfg.HSM.Open(ctx, o)
}

// ensureKey finds the key a URI names, generating it on the token when it
// does not exist. It never replaces an existing key. The store's lock
// named after the key makes nodes that start at once generate it once.
func ensureKey(ctx context.Context, cfg *config.Config, lock keyring.Lock, tok *hsm.Token, uri string, kt hsm.KeyType) (*hsm.Signer, bool, error) {
	label, err := cfg.HSM.KeyLabel(uri)
	if err != nil {
		return nil, false, err
	}
	return keyring.EnsureOnce(ctx, lock, tok, label, kt)
}

// findServiceKey finds on the token the key of the setting named setting,
// what in messages: a missing key asks for `thiqa init` (hint may add
// another way out).
func findServiceKey(ctx context.Context, p *platform, setting, uri, what, hint string) (*hsm.Signer, error) {
	label, err := p.cfg.HSM.KeyLabel(uri)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", setting, err)
	}
	key, err := p.token.FindKey(ctx, label)
	if errors.Is(err, hsm.ErrKeyNotFound) {
		return nil, fmt.Errorf("%s %s is not on the token: run `thiqa init --data %s` to create it%s", what, uri, p.cfg.Dir(), hint)
	}
	if err != nil {
		return nil, fmt.Errorf("%s %s: %w", what, uri, err)
	}
	return key, nil
}

// initDevIssuer makes sure the development token issuer key exists and
// publishes its public key as the JWK set the default configuration trusts.
func initDevIssuer(ctx context.Context, p *platform, out io.Writer) error {
	if p.cfg.Keys.DevTokenIssuer == "" {
		return nil
	}
	key, err := ensureServiceKey(ctx, p, p.cfg.Keys.DevTokenIssuer, hsm.ECP256)
	if err != nil {
		return err
	}
	if err := auth.PublishDevIssuerKey(p.cfg.Resolve(config.DevJWKSFile), key); err != nil {
		return err
	}
	fmt.Fprintf(out, "  dev token issuer  %s\n", key.URI())
	return nil
}
