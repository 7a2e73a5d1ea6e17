package hierarchy

import (
	"context"
	"crypto"
	"crypto/x509"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"github.com/thiqa/thiqa/ca"
	"github.com/thiqa/thiqa/internal/atomicfile"
	"github.com/thiqa/thiqa/internal/audit"
	"github.com/thiqa/thiqa/internal/pemcert"
	"github.com/thiqa/thiqa/policies"
)

// ErrPending stops `thiqa init` after the CA step when issuing CAs await
// their certificates from the key ceremony: the steps after it need them.
// It is not a failure.
var ErrPending = errors.New("issuing CAs await their certificates from the key ceremony")

// initActor records what Init does.
const initActor = "thiqa-init"

// Init creates the hierarchy on the token and in the CA folder, keeping
// what exists, and tells out. With the root key online (development): the
// root key and its self-signed certificate, then each issuing CA's key and
// certificate; a key without its certificate, or a certificate without
// its key, stops with nothing created or replaced. With an offline root
// (InitOffline) it prepares the issuing CAs for the key ceremony.
func Init(ctx context.Context, c Config, tok Token, log Auditor, out io.Writer) error {
	if c.RootOffline {
		return InitOffline(ctx, c, tok, log, out)
	}
	profiles, err := policies.DefaultProfiles(c.Profiles)
	if err != nil {
		return err
	}
	parts, err := Find(ctx, c, tok)
	if err != nil {
		return err
	}
	parts = parts[:1+len(c.Issuers)] // later generations come from Rollover
	root := parts[0]
	for _, p := range parts {
		switch {
		case p.Key != nil && p.Cert == nil:
			return fmt.Errorf("CA %s: the token holds key %s but %s is missing; restore the certificate, or, when an interrupted `thiqa init` generated the key and never wrote it, start again with a new data folder and token (nothing was created or replaced)", p.Conf.Name, p.Conf.Key, p.Path)
		case p.Key == nil && p.Cert != nil:
			return fmt.Errorf("CA %s: %s exists but the token has no key %s; restore the key or the configuration (nothing was created or replaced)", p.Conf.Name, p.Path, p.Conf.Key)
		case p != root && p.Cert != nil && root.Cert == nil:
			return fmt.Errorf("CA %s exists but the root CA does not; refusing to create a new root under it (nothing was created)", p.Conf.Name)
		case p != root && p.Cert != nil:
			if err := p.Cert.CheckSignatureFrom(root.Cert); err != nil {
				return fmt.Errorf("CA %s: %s is not signed by the root in %s: %w", p.Conf.Name, p.Path, root.Path, err)
			}
		}
	}
	if err := os.MkdirAll(c.CertDir, 0o755); err != nil {
		return fmt.Errorf("creating the CA certificate folder: %w", err)
	}
	for _, p := range parts {
		if p.Cert == nil {
			if err := createCA(ctx, c, tok, log, profiles, root, p); err != nil {
				return fmt.Errorf("CA %s: %w", p.Conf.Name, err)
			}
		}
		fmt.Fprintf(out, "  CA %-13s %s  %s\n", p.Conf.Name, p.Conf.Key, p.Path)
	}
	return nil
}

// createCA generates one CA's key and certificate and records both.
func createCA(ctx context.Context, c Config, tok Token, log Auditor, profiles *policies.ProfileSet, root, p *Part) error {
	validity, err := policies.ParseValidity(p.Conf.Validity)
	if err != nil {
		return err
	}
	key, err := tok.GenerateKey(ctx, p.Conf.KeyLabel, p.Conf.KeyType)
	if err != nil {
		return fmt.Errorf("generating key %s: %w", p.Conf.Key, err)
	}
	p.Key = key
	if p == root {
		p.Cert, err = ca.CreateRoot(key, ca.RootConfig{
			CommonName: p.Conf.CommonName, Organization: p.Conf.Organization,
			OrganizationIdentifier: p.Conf.OrganizationIdentifier, Country: p.Conf.Country, Validity: validity,
		})
	} else {
		p.Cert, err = ca.CreateIssuingCA(root.Cert, root.Key, key, ca.IssuingCAConfig{
			Name: p.Conf.Name, CommonName: p.Conf.CommonName, Organization: p.Conf.Organization,
			OrganizationIdentifier: p.Conf.OrganizationIdentifier, Country: p.Conf.Country, Validity: validity,
			BaseURL: c.BaseURL, Policies: ca.IssuingCAPolicies(profiles, p.Conf.Name),
		})
	}
	if err != nil {
		return err
	}
	// Recorded before the file appears: a run again skips a CA whose
	// certificate exists, so a record missing then stays missing.
	_, err = log.Append(ctx, audit.Entry{
		Actor: initActor, Action: "ca.certificate.create", Object: p.Conf.Name, Outcome: audit.OutcomeSuccess,
		Details: map[string]any{
			"serial": hex.EncodeToString(p.Cert.SerialNumber.Bytes()), "subject": p.Cert.Subject.String(),
			"issuer": p.Cert.Issuer.String(), "notAfter": p.Cert.NotAfter, "sha256": sha256Hex(p.Cert.Raw), "key": p.Conf.Key,
		},
	})
	if err != nil {
		return fmt.Errorf("writing audit record: %w", err)
	}
	if err := atomicfile.WriteNew(p.Path, pemcert.Encode(p.Cert.Raw), 0o644); err != nil {
		return fmt.Errorf("writing %s: %w (the audit log records the certificate, SHA-256 %s, that was lost: start again with a new data folder and token)", p.Path, err, sha256Hex(p.Cert.Raw))
	}
	return nil
}

// InitOffline is the CA step of `thiqa init` for an offline root: it
// checks the root certificate and that no key on the online token is the
// root's, then gives each issuing CA without a key one (generated on the
// token) and a CSR in the CA folder ({name}.csr). It returns ErrPending
// while any issuing CA lacks its certificate.
func InitOffline(ctx context.Context, c Config, tok Token, log Auditor, out io.Writer) error {
	parts, err := Find(ctx, c, tok)
	if err != nil {
		return err
	}
	root := parts[0]
	if root.Cert == nil {
		return fmt.Errorf("the root certificate %s is missing: run `thiqa init --data %s --root-cert root.pem` with the certificate from the key ceremony", root.Path, c.Dir)
	}
	if err := CheckRoot(root.Cert); err != nil {
		return fmt.Errorf("%s: %w", root.Path, err)
	}
	if err := refuseRootKeyOnToken(ctx, tok, root.Cert); err != nil {
		return err
	}
	fmt.Fprintf(out, "  CA %-13s offline (certificate %s, SHA-256 %s)\n", "root", root.Path, ca.Fingerprint(root.Cert.Raw))
	var pending []string
	for _, conf := range c.Issuers {
		g, err := findGeneration(ctx, c, tok, conf, 1)
		if err != nil {
			return err
		}
		later, err := InstalledGenerations(c.CertDir, conf.Name)
		if err != nil {
			return err
		}
		switch {
		case g.key == nil && g.cert != nil && len(later) > 0:
			fmt.Fprintf(out, "  CA %-13s rolled over to %s; the first generation's key is gone from the token\n", g.name, GenerationName(conf.Name, len(later)+1))
			continue
		case g.key == nil && g.cert != nil:
			return fmt.Errorf("CA %s: %s exists but the token has no key %s; restore the key or the configuration (nothing was created or replaced)", g.name, g.certPath, g.uri)
		case g.cert != nil:
			if err := g.cert.CheckSignatureFrom(root.Cert); err != nil {
				return fmt.Errorf("CA %s: %s is not signed by the root in %s: %w", g.name, g.certPath, root.Path, err)
			}
			fmt.Fprintf(out, "  CA %-13s %s  %s\n", g.name, g.uri, g.certPath)
			continue
		case g.key == nil && g.hasCSR:
			return fmt.Errorf("CA %s: %s is the CSR of a key the token does not hold (%s): move it away first, then run the command again to give the CA a new key (nothing was changed)", g.name, g.csrPath, g.uri)
		case g.key == nil:
			if g.key, err = tok.GenerateKey(ctx, g.label, conf.KeyType); err != nil {
				return fmt.Errorf("generating key %s: %w", g.uri, err)
			}
		}
		if err := writeCSR(ctx, log, g, initActor); err != nil {
			return err
		}
		fmt.Fprintf(out, "  CA %-13s %s  awaiting its certificate: CSR %s\n", g.name, g.uri, g.csrPath)
		pending = append(pending, g.name)
	}
	if len(pending) > 0 {
		return fmt.Errorf("%w (%s)", ErrPending, strings.Join(pending, ", "))
	}
	return nil
}

// refuseRootKeyOnToken fails when a key on the online token is the root's.
func refuseRootKeyOnToken(ctx context.Context, tok Token, root *x509.Certificate) error {
	keys, err := tok.Keys(ctx)
	if err != nil {
		return err
	}
	for _, k := range keys {
		if pub, ok := k.Public.(interface{ Equal(crypto.PublicKey) bool }); ok && pub.Equal(root.PublicKey) {
			return fmt.Errorf("the online token holds the root key (%s): an offline root's key never comes online; nothing was created", k.URI)
		}
	}
	return nil
}

// writeCSR writes the CSR of generation g (its key on the token, the CA's
// configured subject; a later generation's commonName ends in " G<n>" so
// the two never share a name) unless it exists, and records it. A CSR
// there that is not for g's key (its key is gone: a token replaced or
// restored) is refused: the ceremony would certify a key nobody holds.
func writeCSR(ctx context.Context, log Auditor, g *generation, actor string) error {
	if g.hasCSR {
		return checkCSR(g)
	}
	cn := g.conf.CommonName
	if g.n > 1 {
		cn = fmt.Sprintf("%s G%d", cn, g.n)
	}
	der, err := ca.CreateIssuingCARequest(g.key, ca.IssuingCAConfig{Name: g.name, CommonName: cn, Organization: g.conf.Organization,
		OrganizationIdentifier: g.conf.OrganizationIdentifier, Country: g.conf.Country})
	if err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Dir(g.csrPath), 0o755); err != nil {
		return fmt.Errorf("creating the CA certificate folder: %w", err)
	}
	// Recorded before the file appears: a run again keeps a CSR that
	// exists, so a record missing then stays missing. Without the file,
	// the run again writes and records another CSR for the same key.
	_, err = log.Append(ctx, audit.Entry{Actor: actor, Action: "ca.csr.create", Object: g.name, Outcome: audit.OutcomeSuccess,
		Details: map[string]any{"key": g.key.URI(), "csr": g.csrPath, "sha256": sha256Hex(der), "generation": g.n}})
	if err != nil {
		return fmt.Errorf("writing audit record: %w", err)
	}
	if err := atomicfile.WriteNew(g.csrPath, pemCSR(der), 0o644); err != nil {
		return fmt.Errorf("writing %s: %w (run the command again)", g.csrPath, err)
	}
	g.hasCSR = true
	return nil
}

// Issuing returns the parts (as Find returns them) that issue or answer
// for what they issued: every issuing CA and generation with its key and
// certificate, the generations whose key was destroyed left out. It
// refuses a hierarchy without its root certificate, an issuing CA that is
// not initialised, and, with an offline root, issuing CAs still waiting
// for their certificates (PendingError).
func Issuing(c Config, parts []*Part) ([]*Part, error) {
	// The root key may be kept offline: only its certificate is needed here.
	if parts[0].Cert == nil {
		return nil, fmt.Errorf("root CA certificate %s is missing: run `thiqa init --data %s`", parts[0].Path, c.Dir)
	}
	var pending, active []*Part
	current := CurrentGenerations(parts)
	for _, p := range parts[1:] {
		if p.Key != nil && p.Cert == nil && c.RootOffline {
			pending = append(pending, p)
			continue
		}
		if KeyDestroyed(p, current) {
			continue
		}
		active = append(active, p)
		if p.Key == nil || p.Cert == nil {
			return nil, fmt.Errorf("CA %s is not initialised (key %s, certificate %s): run `thiqa init --data %s`", p.Conf.Name, p.Conf.Key, p.Path, c.Dir)
		}
	}
	if len(pending) > 0 {
		return nil, PendingError(c, pending)
	}
	return active, nil
}

// Issuers finds the hierarchy on tok (Find) and builds an issuer for
// every part that issues or answers for what it issued (Issuing), with
// opts and the part's own name, CA, generation and c.BaseURL; it returns
// the root's certificate too. A key that can sign with session copies (an
// HSM key: UseSessionCopies) does, for an issuing CA signs all day.
func Issuers(ctx context.Context, c Config, tok Token, opts ca.IssuerOptions) (*x509.Certificate, []*ca.Issuer, error) {
	parts, err := Find(ctx, c, tok)
	if err != nil {
		return nil, nil, err
	}
	active, err := Issuing(c, parts)
	if err != nil {
		return nil, nil, err
	}
	var issuers []*ca.Issuer
	for _, p := range active {
		if k, ok := p.Key.(interface{ UseSessionCopies() }); ok {
			k.UseSessionCopies()
		}
		o := opts
		o.Name, o.BaseURL, o.CA, o.Generation = p.Conf.Name, c.BaseURL, p.CA(), p.Generation()
		is, err := ca.NewIssuer(p.Cert, p.Key, o)
		if err != nil {
			return nil, nil, err
		}
		issuers = append(issuers, is)
	}
	return parts[0].Cert, issuers, nil
}

// OpenAuthority builds the issuance service over hierarchy c on tok: the
// default certificate profiles with c.Profiles' deployment values (a
// natural-person profile that lists no countries issuing to c.Country
// alone), and the root and the issuers (with opts) that Issuers finds. a
// gives the rest of the service (store, auditor, logger, metrics); its
// Root, Issuers and Profiles are set here.
func OpenAuthority(ctx context.Context, c Config, tok Token, opts ca.IssuerOptions, a ca.AuthorityConfig) (*ca.Authority, error) {
	profiles, err := policies.DefaultProfiles(c.Profiles)
	if err != nil {
		return nil, err
	}
	root, issuers, err := Issuers(ctx, c, tok, opts)
	if err != nil {
		return nil, err
	}
	a.Root, a.Issuers, a.Profiles = root, issuers, profiles.WithHomeCountry(c.Country)
	return ca.NewAuthority(a)
}

// PendingError names the issuing CAs whose certificates are missing and
// the commands that install them.
func PendingError(c Config, pending []*Part) error {
	var names, steps []string
	for _, p := range pending {
		csr := strings.TrimSuffix(p.Path, ".pem") + ".csr"
		names = append(names, fmt.Sprintf("%s (%s)", p.Conf.Name, p.Path))
		steps = append(steps, fmt.Sprintf("`thiqa ca sign --ceremony DIR --csr %s --name %s --out %s.pem` then `thiqa ca import --data %s --name %s --cert %s.pem`",
			csr, p.CA(), p.Conf.Name, c.Dir, p.CA(), p.Conf.Name))
	}
	return fmt.Errorf("issuing CA certificates are missing: %s. The root is offline: have it certify each CSR in the key ceremony and install the certificate here: %s; then run `thiqa init --data %s` (docs/ceremony.md)",
		strings.Join(names, ", "), strings.Join(steps, "; "), c.Dir)
}
