package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"time"

	"github.com/thiqa/thiqa/ca/ceremony"
	"github.com/thiqa/thiqa/cmd/thiqa/internal/config"
	"github.com/thiqa/thiqa/hsm"
	"github.com/thiqa/thiqa/policies"
)

// rootSubject is the JSON of --subject-file: the root's distinguished name.
type rootSubject struct {
	CommonName             string `json:"commonName"`
	OrganizationName       string `json:"organizationName"`
	OrganizationIdentifier string `json:"organizationIdentifier"`
	Country                string `json:"country"`
}

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
	kt, err := rootKeyType(*keyType)
	if err != nil {
		return withExit(2, err)
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
		KeyType: kt.String(), CommonName: subject.CommonName, Organization: subject.OrganizationName,
		OrganizationIdentifier: subject.OrganizationIdentifier, Country: subject.Country, NotBefore: now, NotAfter: life.End(now),
		ConfigFile: config.CeremonyPath(cfg.Dir()),
	}, env.stdout)
}

// rootKeyType maps --key-type to a token key type.
func rootKeyType(s string) (hsm.KeyType, error) {
	switch s {
	case "ec-p384":
		return hsm.ECP384, nil
	case "rsa4096", "rsa-4096":
		return hsm.RSA4096, nil
	}
	return 0, fmt.Errorf("--key-type %q: want ec-p384 or rsa4096", s)
}

// readRootSubject reads --subject-file strictly, or returns the default
// PLACEHOLDER root subject.
func readRootSubject(path string) (rootSubject, error) {
	if path == "" {
		d := config.DefaultCAConfig().Root
		return rootSubject{CommonName: d.CommonName, OrganizationName: d.Organization, OrganizationIdentifier: d.OrganizationIdentifier, Country: d.Country}, nil
	}
	raw, err := os.ReadFile(path)
	if err != nil {
		return rootSubject{}, fmt.Errorf("reading --subject-file: %w", err)
	}
	var s rootSubject
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&s); err != nil {
		return rootSubject{}, withExit(2, fmt.Errorf("--subject-file %s: want a JSON object with commonName, organizationName, organizationIdentifier and country: %w", path, err))
	}
	if s.CommonName == "" || !policies.IsCountryCode(s.Country) {
		return rootSubject{}, withExit(2, fmt.Errorf("--subject-file %s: commonName and an ISO 3166 country are required", path))
	}
	return s, nil
}
