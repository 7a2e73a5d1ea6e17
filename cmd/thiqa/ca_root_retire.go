package main

import (
	"context"
	"crypto"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"time"

	"github.com/thiqa/thiqa/ca"
	"github.com/thiqa/thiqa/ca/crl"
	"github.com/thiqa/thiqa/cmd/thiqa/internal/config"
	"github.com/thiqa/thiqa/hsm"
	"github.com/thiqa/thiqa/internal/audit"
)

// actRootRetireOnline is the audit action of `thiqa ca root retire-online`,
// recorded before the online copy of the root key is destroyed.
const actRootRetireOnline = "ca.root.retire-online"

// caRootRetireOnline is `thiqa ca root retire-online`: on the online
// side, after `thiqa ca root adopt` took the root into a ceremony folder,
// it switches the data folder to an offline root and destroys the root key
// on the online token. The proof that the offline copy of the key works
// is the root CRL the ceremony signed after adopting it: signed by the
// root's key, with a CRL number above every one the online servers handed
// out (so not signed here), and it becomes the imported root CRL. In this
// order, each step kept when done: import the CRL, rewrite thiqa.yaml
// (ca.root.offline), record the retirement in the audit log, destroy the
// key. A run again after an interruption takes up where it stopped; on a
// folder whose root is offline with no root key on the token it changes
// nothing.
func caRootRetireOnline(ctx context.Context, env *cliEnv, args []string) error {
	fs := newFlags("ca root retire-online", env)
	dir := fs.String("data", "", "data folder (required)")
	crlFile := fs.String("crl", "", "the root CRL the ceremony signed after `thiqa ca root adopt` (thiqa ca crl --ceremony C --out root.crl): the proof that the offline copy of the root key signs (required)")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if *dir == "" || *crlFile == "" {
		return withExit(2, errors.New("--data and --crl are required: the root CRL the ceremony signed is the proof that the offline copy of the root key works; without it the online key is not destroyed"))
	}
	cfg, err := loadConfig(*dir)
	if err != nil {
		return err
	}
	if !cfg.CA.Enabled() {
		return errors.New("this data folder runs no CA (ca section of thiqa.yaml)")
	}
	root, err := caCertificate(cfg, cfg.CA.Root.Name)
	if err != nil {
		return fmt.Errorf("the root certificate: %w", err)
	}
	raw, err := os.ReadFile(*crlFile)
	if err != nil {
		return fmt.Errorf("reading --crl: %w", err)
	}
	now := time.Now()
	proof, err := crl.CheckImported(cfg.CA.Root.Name, raw, root, now)
	if err != nil {
		return crl.Refused(*crlFile, err)
	}
	p, closePlatform, err := openOperatorPlatform(ctx, env, cfg)
	if err != nil {
		return err
	}
	defer closePlatform()
	last, err := p.db.Revocations().LastCRLNumber(ctx, cfg.CA.Root.Name)
	if err != nil {
		return err
	}
	if proof.Number == nil || proof.Number.Cmp(last) <= 0 {
		return crl.Refused(*crlFile, fmt.Errorf("%w: its number %s is not above %s, the last the online root signed: it may come from the online key, so it proves nothing about the offline copy; "+
			"sign the root CRL in the ceremony folder that adopted the root (thiqa ca crl --ceremony C --out root.crl) and give that one", errNoProof, proof.NumberString(), last))
	}
	sum := ca.Fingerprint(proof.DER)
	out := env.stdout
	switch err := crl.Import(ctx, p.db.ImportedCRLs(), p.audit, proof, *crlFile, operatorName(), now); {
	case errors.Is(err, crl.ErrNotNewer) && cfg.CA.Root.Offline:
		fmt.Fprintf(out, "root CRL: a newer one than %s is imported already\n", *crlFile)
	case err != nil:
		return err
	default:
		fmt.Fprintf(out, "root CRL number %s imported (SHA-256 fingerprint %s): signed by the offline copy of the root key\n", proof.NumberString(), sum)
	}
	changed, err := config.SetRootOffline(cfg.Dir())
	if err != nil {
		return err
	}
	if changed {
		fmt.Fprintf(out, "%s: ca.root is now offline (ca.root.offline: true, no key)\n", config.Path(cfg.Dir()))
	}
	keys, err := p.token.ListKeys(ctx)
	if err != nil {
		return err
	}
	destroyed := 0
	for _, k := range keys {
		pub, ok := k.Public.(interface{ Equal(crypto.PublicKey) bool })
		if !ok || !pub.Equal(root.PublicKey) {
			continue
		}
		spki, err := ca.SPKIHash(k.Public)
		if err != nil {
			return err
		}
		if _, err := p.audit.Append(ctx, audit.Entry{Actor: operatorName(), Action: actRootRetireOnline, Object: k.URI, Outcome: audit.OutcomeSuccess,
			Details: map[string]any{"root": root.Subject.String(), "spkiSHA256": hex.EncodeToString(spki[:]), "rootSHA256": ca.Fingerprint(root.Raw),
				"proofCRL": proof.NumberString(), "proofSHA256": sum, "lastOnlineCRL": last.String()},
		}); err != nil {
			return fmt.Errorf("writing the audit record (the online root key was not destroyed: run the command again): %w", err)
		}
		if err := p.token.DeleteKey(ctx, k.Label); err != nil && !errors.Is(err, hsm.ErrKeyNotFound) {
			return fmt.Errorf("destroying the online root key %s: %w (run the command again)", k.URI, err)
		}
		fmt.Fprintf(out, "online root key %s destroyed (SPKI SHA-256 %s)\n", k.URI, hex.EncodeToString(spki[:]))
		destroyed++
	}
	switch {
	case destroyed == 0 && changed:
		// The key was gone already (another node of a cluster sharing the
		// HSM retired it): the switch is recorded all the same.
		if _, err := p.audit.Append(ctx, audit.Entry{Actor: operatorName(), Action: actRootRetireOnline, Object: config.Path(cfg.Dir()), Outcome: audit.OutcomeSuccess,
			Details: map[string]any{"root": root.Subject.String(), "rootSHA256": ca.Fingerprint(root.Raw), "key": "not on the online token",
				"proofCRL": proof.NumberString(), "proofSHA256": sum, "lastOnlineCRL": last.String()},
		}); err != nil {
			return fmt.Errorf("writing the audit record: %w", err)
		}
		fmt.Fprintln(out, "the online token holds no key of the root (already destroyed)")
	case destroyed == 0:
		fmt.Fprintf(out, "the root of %s is offline already and its key is not on the online token: nothing else to do\n", cfg.Dir())
	}
	fmt.Fprintf(out, "next: restart every thiqa serve of this deployment; copy the online token again (its backup must no longer hold the root key);\n"+
		"sign the next root CRL in the ceremony before %s and import it (thiqa ca crl import --data %s --crl F)\n",
		proof.NextUpdate.Add(-14*24*time.Hour).Format(time.DateOnly), cfg.Dir())
	return nil
}

// errNoProof is a root CRL that does not prove that the offline copy of
// the root key works.
var errNoProof = errors.New("not a proof that the offline copy of the root key signs")
