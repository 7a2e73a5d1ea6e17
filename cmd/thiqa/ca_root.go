package main

import (
	"context"
	"fmt"
	"os"
	"time"

	"github.com/thiqa/thiqa/ca"
	"github.com/thiqa/thiqa/ca/ceremony"
	"github.com/thiqa/thiqa/cmd/thiqa/internal/config"
)

// caRootCreate is `thiqa ca root create`: the first act of the key
// ceremony (ceremony.Folder.CreateRoot), in a ceremony folder created with
// its own SoftHSM token when it does not exist.
func caRootCreate(ctx context.Context, env *cliEnv, args []string) error {
	fs := newFlags("ca root create", env)
	dir := fs.String("ceremony", "", "ceremony folder, created with its own SoftHSM token when it does not exist (required)")
	keyType := fs.String("key-type", "ec-p384", "root key type: ec-p384 or rsa4096")
	subjectFile := fs.String("subject-file", "", "JSON {commonName, organizationName, organizationIdentifier, country} (default: the PLACEHOLDER root of thiqa.yaml)")
	validity := fs.String("validity", "25y", "lifetime of the root certificate: years (25y), days or a Go duration")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	kt, err := ceremony.ParseRootKeyType(*keyType)
	if err != nil {
		return withExit(2, fmt.Errorf("--key-type %q: %w", *keyType, err))
	}
	life, err := ceremony.ParseLifetime(*validity)
	if err != nil {
		return withExit(2, fmt.Errorf("--validity %w", err))
	}
	subject, err := readRootSubject(*subjectFile)
	if err != nil {
		return err
	}
	c, cfg, err := openCeremony(ctx, *dir, true)
	if err != nil {
		return err
	}
	defer c.Close()
	now := time.Now().UTC().Truncate(time.Second)
	return c.CreateRoot(ctx, ceremony.RootRequest{
		KeyType: kt, CommonName: subject.CommonName, Organization: subject.OrganizationName,
		OrganizationIdentifier: subject.OrganizationIdentifier, Country: subject.Country, NotBefore: now, NotAfter: life.End(now),
		ConfigFile: config.CeremonyPath(cfg.Dir()),
	}, env.stdout)
}

// readRootSubject reads --subject-file (ceremony.ParseRootSubject), or
// returns the default PLACEHOLDER root subject.
func readRootSubject(path string) (ceremony.RootSubject, error) {
	if path == "" {
		d := ca.DefaultConfig().Root
		return ceremony.RootSubject{CommonName: d.CommonName, OrganizationName: d.Organization, OrganizationIdentifier: d.OrganizationIdentifier, Country: d.Country}, nil
	}
	raw, err := os.ReadFile(path)
	if err != nil {
		return ceremony.RootSubject{}, fmt.Errorf("reading --subject-file: %w", err)
	}
	s, err := ceremony.ParseRootSubject(raw)
	if err != nil {
		return s, withExit(2, fmt.Errorf("--subject-file %s: %w", path, err))
	}
	return s, nil
}
