package main

import (
	"context"
	"crypto/x509"
	"fmt"
	"io"
	"math/big"
	"time"

	"github.com/thiqa/thiqa/bench"
	"github.com/thiqa/thiqa/ca/ocsp"
	"github.com/thiqa/thiqa/cmd/thiqa/internal/config"
	"github.com/thiqa/thiqa/hsm"
	"github.com/thiqa/thiqa/hsm/keyring"
	"github.com/thiqa/thiqa/identity"
	"github.com/thiqa/thiqa/policies"
	"github.com/thiqa/thiqa/store"
	"github.com/thiqa/thiqa/verify"
)

// benchDeps gives the load generators (package bench) this binary's view of
// a deployment: bench.Deps, Folder, Token, Platform and Store.
type benchDeps struct{ stderr io.Writer }

func (d benchDeps) Folder(dir string) (*bench.Folder, error) {
	cfg, err := loadConfig(dir)
	if err != nil {
		return nil, err
	}
	// The generators' warnings only, and at least the sessions they ask for.
	env := &cliEnv{stderr: d.stderr}
	sessions := func(n int) { cfg.HSM.PoolSize = max(cfg.HSM.PoolSize, n) }
	return &bench.Folder{
		HSMModule: cfg.HSM.Module, Country: cfg.CA.Country(), CAEnabled: cfg.CA.Enabled(), IdentityEnabled: identityOn(cfg), PINParams: cfg.Identity.PINParams(),
		IssuerKey: func(profile string) (string, error) { return benchIssuerKey(cfg, profile) },
		CACertificate: func(name string) (*x509.Certificate, error) {
			c, err := caCertificate(cfg, name)
			if err != nil {
				return nil, fmt.Errorf("CA %s: %w", name, err)
			}
			return c, nil
		},
		OpenToken: func(ctx context.Context, n int) (bench.Token, error) {
			sessions(n)
			tok, err := openToken(ctx, cfg, operatorLogger(env, cfg), nil)
			if err != nil {
				return nil, err
			}
			return &benchToken{cfg: cfg, tok: tok}, nil
		},
		OpenPlatform: func(ctx context.Context, n int) (bench.Platform, error) {
			sessions(n)
			p, closeAll, err := openOperatorPlatform(ctx, env, cfg)
			if err != nil {
				return nil, err
			}
			return &benchPlatform{benchToken: benchToken{cfg: cfg, tok: p.token}, p: p, closeAll: closeAll}, nil
		},
		OpenStore: func(ctx context.Context) (bench.Store, error) {
			db, err := openStore(ctx, cfg, operatorLogger(env, cfg))
			if err != nil {
				return nil, err
			}
			return benchStore{db}, nil
		},
	}, nil
}

func (benchDeps) KeyType(name string) (string, error) {
	kt, err := hsm.ParseKeyType(name)
	return kt.String(), err
}

func (benchDeps) TrustedLists(ctx context.Context, lists, listSigners []string) (verify.TrustedLists, error) {
	tl, _, err := loadTrustedLists(ctx, nil, lists, listSigners, true, 30*time.Second)
	return tl, err
}

// benchIssuerKey returns the token label of the key of the CA that issues
// profile (bench.Folder.IssuerKey).
func benchIssuerKey(cfg *config.Config, profile string) (string, error) {
	profiles, err := policies.DefaultProfiles(cfg.CA.Profiles)
	if err != nil {
		return "", err
	}
	p, err := profiles.Get(profile)
	if err != nil {
		return "", withExit(2, err)
	}
	for _, is := range cfg.CA.Issuers {
		if is.Name == p.Issuers[0] {
			return cfg.HSM.KeyLabel(is.Key)
		}
	}
	return "", fmt.Errorf("issuing CA %q of profile %s is not configured", p.Issuers[0], profile)
}

// benchToken is the open token (bench.Token).
type benchToken struct {
	cfg *config.Config
	tok *hsm.Token
}

func (t *benchToken) Close() error { return t.tok.Close() }

func (t *benchToken) MintToken(ctx context.Context, subject string, role policies.Role, ttl time.Duration) (string, error) {
	return mintDevToken(ctx, t.cfg, t.tok, subject, role, ttl)
}

// benchKey describes a key on the token to the generators.
func benchKey(k *hsm.Signer) bench.Key {
	return bench.Key{Signer: k, Label: k.Label(), Type: k.KeyType().String()}
}

func (t *benchToken) Key(ctx context.Context, label string) (bench.Key, error) {
	k, err := t.tok.FindKey(ctx, label)
	if err != nil {
		return bench.Key{}, err
	}
	return benchKey(k), nil
}

func (t *benchToken) TSAUnitKey(ctx context.Context) (bench.Key, error) {
	units, err := tsaUnits(t.cfg, keyring.Ring{Token: t.tok}, nil)
	if err != nil {
		return bench.Key{}, err
	}
	unit, err := units.Load(ctx)
	if err != nil {
		return bench.Key{}, err
	}
	k, ok := unit.Key.Signer.(*hsm.Signer)
	if !ok {
		return bench.Key{}, fmt.Errorf("TSA unit key %s is not on the token", unit.Key.Label)
	}
	return benchKey(k), nil
}

func (t *benchToken) RawSignRate(ctx context.Context, label string, g int, d time.Duration) (float64, error) {
	return hsm.RawSignRate(ctx, t.tok, label, g, d)
}

func (t *benchToken) RawSignRateSessionCopy(ctx context.Context, label string, g int, d time.Duration) (float64, error) {
	return hsm.RawSignRateSessionCopy(ctx, t.tok, label, g, d)
}

// benchPlatform is the open token, store and audit log (bench.Platform).
type benchPlatform struct {
	benchToken
	p        *platform
	closeAll func()
}

func (p *benchPlatform) Close() error     { p.closeAll(); return nil }
func (p *benchPlatform) Operator() string { return operatorName() }

// BenchKey finds or generates pkcs11:token=…;object=bench-<keyType>.
func (p *benchPlatform) BenchKey(ctx context.Context, keyType string) (bench.Key, error) {
	kt, err := hsm.ParseKeyType(keyType)
	if err != nil {
		return bench.Key{}, err
	}
	uri := fmt.Sprintf("pkcs11:token=%s;object=bench-%s", p.cfg.HSM.TokenLabel, kt)
	key, generated, err := ensureKey(ctx, p.cfg, p.p.db, p.tok, uri, kt)
	if err != nil {
		return bench.Key{}, err
	}
	if generated {
		if err := keyring.Generated(ctx, p.p.audit, key); err != nil {
			return bench.Key{}, err
		}
	}
	return benchKey(key), nil
}

func (p *benchPlatform) Authority(ctx context.Context) (bench.Issuer, error) {
	a, err := openAuthority(ctx, p.p, nil)
	if err != nil {
		return nil, err
	}
	return a, nil
}

func (p *benchPlatform) EnrolMobileID(ctx context.Context, credential, loginPIN, actor string) error {
	e, err := mobileEnrolment(p.p)
	if err != nil {
		return err
	}
	_, err = identity.EnrolMobileID(ctx, e, credential, loginPIN, actor)
	return err
}

func (p *benchPlatform) AddClient(ctx context.Context, c *identity.Client) error {
	return p.p.db.Identity().AddClient(ctx, c)
}

// benchStore is the open store (bench.Store).
type benchStore struct{ *store.DB }

func (s benchStore) AllStatuses(ctx context.Context, ca string, fn func(*big.Int, ocsp.Status) error) error {
	return s.Revocations().AllStatuses(ctx, ca, fn)
}

func (s benchStore) CertificateDER(ctx context.Context, serial *big.Int) ([]byte, error) {
	rec, err := s.Certificates(nil).GetCertificate(ctx, store.SerialKey(serial))
	if err != nil {
		return nil, err
	}
	return rec.DER, nil
}
