package main

import (
	"bytes"
	"context"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"os"
	"time"

	"github.com/thiqa/thiqa/ca"
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
// ceremony. It generates the root key on the offline token, self-signs the
// root certificate (linted before the key signs it), writes DIR/root.pem
// and records both in the ceremony log. A folder that already has a root
// is refused, and so is a root key already on the token: nothing changes.
func caRootCreate(ctx context.Context, env *cliEnv, args []string) (err error) {
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
	life, err := parseSpan(*validity)
	if err != nil {
		return withExit(2, fmt.Errorf("--validity %w", err))
	}
	subject, err := readRootSubject(*subjectFile)
	if err != nil {
		return err
	}
	c, err := openCeremony(ctx, *dir, true)
	if err != nil {
		return err
	}
	defer c.close()
	if c.state.root != nil {
		return fmt.Errorf("the ceremony folder %s already has a root (%s, certificate SHA-256 %s): nothing was created", c.cfg.Dir(), c.state.root.Subject, c.state.root.CertSHA256)
	}
	if _, err := os.Stat(c.path(ceremonyRootFile)); err == nil {
		return fmt.Errorf("%s exists but the ceremony log records no root: move it away (nothing was created)", c.path(ceremonyRootFile))
	}
	label, err := c.rootKeyLabel()
	if err != nil {
		return err
	}
	tok, err := c.openToken(ctx, true)
	if err != nil {
		return err
	}
	defer tok.Close()
	if _, err := tok.FindKey(ctx, label); err == nil {
		return fmt.Errorf("the offline token already holds a key %q but the ceremony log records no root: nothing was created or replaced", label)
	} else if !errors.Is(err, hsm.ErrKeyNotFound) {
		return fmt.Errorf("looking for the root key: %w", err)
	}

	key, err := tok.GenerateKey(ctx, label, kt)
	if err != nil {
		return fmt.Errorf("generating the root key: %w", err)
	}
	defer func() {
		if err != nil { // leave no root key without its certificate
			_ = tok.DeleteKey(context.WithoutCancel(ctx), label)
		}
	}()
	now := time.Now().UTC().Truncate(time.Second)
	cert, err := ca.CreateRoot(key, ca.RootConfig{
		CommonName: subject.CommonName, Organization: subject.OrganizationName, OrganizationIdentifier: subject.OrganizationIdentifier,
		Country: subject.Country, NotBefore: now, NotAfter: life.end(now),
	})
	if err != nil {
		return err
	}
	if err := writeFileExclusive(c.path(ceremonyRootFile), pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: cert.Raw}), 0o644); err != nil {
		return fmt.Errorf("writing %s: %w", c.path(ceremonyRootFile), err)
	}
	defer func() {
		if err != nil {
			_ = os.Remove(c.path(ceremonyRootFile))
		}
	}()
	spki, err := spkiHex(cert.PublicKey)
	if err != nil {
		return err
	}
	rec, err := c.record(ctx, actRootCreate, cert.Subject.String(), rootCreated{
		Subject: cert.Subject.String(), Serial: hex.EncodeToString(cert.SerialNumber.Bytes()), Key: key.URI(), KeyType: kt.String(),
		SPKISHA256: spki, CertSHA256: sha256Hex(cert.Raw), NotBefore: cert.NotBefore, NotAfter: cert.NotAfter,
	})
	if err != nil {
		return err
	}
	out := env.stdout
	fmt.Fprintf(out, "root CA created in %s\n", c.cfg.Dir())
	fmt.Fprintf(out, "  subject       %s\n", cert.Subject)
	fmt.Fprintf(out, "  key           %s (%s, on the offline token)\n", key.URI(), kt)
	fmt.Fprintf(out, "  certificate   %s, valid %s to %s\n", c.path(ceremonyRootFile), cert.NotBefore.Format(time.RFC3339), cert.NotAfter.Format(time.RFC3339))
	fmt.Fprintf(out, "  SPKI SHA-256  %s\n", spki)
	printRecord(out, rec)
	fmt.Fprintf(out, "SHA-256 fingerprint: %s\n", fingerprint(cert.Raw))
	fmt.Fprintf(out, "next: check publicBaseURL in %s (now %s), then on the online side: thiqa init --data D --root-cert root.pem\n",
		config.CeremonyPath(c.cfg.Dir()), c.cfg.PublicBaseURL)
	return nil
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
