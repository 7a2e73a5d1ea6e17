package main

import (
	"context"
	"errors"
	"fmt"
	"math/big"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/thiqa/thiqa/ca/crl"
	"github.com/thiqa/thiqa/ca/revocation"
)

// caCRL is `thiqa ca crl`: in the key ceremony, the offline root signs its
// CRL (an ARL: it lists revoked issuing CAs only). With --revoke, the
// issuing CA certificate with that serial is revoked first; the
// revocation is recorded in the ceremony log, which is the ceremony's
// revocation state, and every later CRL lists it. The CRL is built and
// linted by the same generator as the online CRLs (ca/crl), with the next
// CRL number the log records.
func caCRL(ctx context.Context, env *cliEnv, args []string) error {
	fs := newFlags("ca crl", env)
	dir := fs.String("ceremony", "", "ceremony folder (required)")
	outFile := fs.String("out", "", "where to write the CRL, DER; must not exist (required)")
	next := fs.String("next-update", "90d", "nextUpdate - thisUpdate: days (90d) or a Go duration, at most 366 days")
	revokeSerial := fs.String("revoke", "", "revoke the issuing CA certificate with this serial (hex) first")
	reasonText := fs.String("reason", "", "with --revoke: keyCompromise, caCompromise, affiliationChanged, superseded, cessationOfOperation, privilegeWithdrawn or unspecified")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if *outFile == "" {
		return withExit(2, errors.New("--ceremony and --out are required"))
	}
	if (*revokeSerial == "") != (*reasonText == "") {
		return withExit(2, errors.New("--revoke SERIAL and --reason R go together"))
	}
	life, err := parseSpan(*next)
	if err != nil {
		return withExit(2, fmt.Errorf("--next-update %w", err))
	}
	var reason revocation.Reason
	if *reasonText != "" {
		if reason, err = revocation.ParseReason(*reasonText); err != nil {
			return withExit(2, err)
		}
	}
	if _, err := os.Stat(*outFile); err == nil {
		return fmt.Errorf("--out %s exists: nothing was signed", *outFile)
	}
	c, err := openCeremony(ctx, *dir, false)
	if err != nil {
		return err
	}
	defer c.close()
	now := time.Now().UTC().Truncate(time.Second)
	var revoke *caRevoked
	if *revokeSerial != "" {
		serial, err := revocation.NormalizeSerial(*revokeSerial)
		if err != nil {
			return withExit(2, fmt.Errorf("--revoke: %w", err))
		}
		issued, ok := c.state.issued[serial]
		switch {
		case !ok:
			return fmt.Errorf("--revoke %s: the root certified no issuing CA with that serial (the ceremony log lists every one): nothing was signed", serial)
		case c.state.revoked[serial].Serial != "":
			return fmt.Errorf("--revoke %s: issuing CA %s is already revoked (%s, at %s): nothing was signed", serial, issued.Name,
				c.state.revoked[serial].Reason, c.state.revoked[serial].RevokedAt.Format(time.RFC3339))
		}
		revoke = &caRevoked{Serial: serial, Name: issued.Name, Reason: reason.String(), RevokedAt: now}
	}
	set, err := crl.Config{Validity: life.end(now).Add(time.Second).Sub(now), BaseURL: c.cfg.PublicBaseURL}.Validate()
	if err != nil {
		return withExit(2, fmt.Errorf("--next-update: %w", err))
	}
	tok, err := c.openToken(ctx, false)
	if err != nil {
		return err
	}
	defer tok.Close()
	root, key, err := c.root(ctx, tok)
	if err != nil {
		return err
	}
	src := &ceremonyRevocations{state: c.state, extra: revoke}
	gen, err := crl.NewGenerator(set, crl.Issuer{Name: "root", Cert: root, Signer: key, CACerts: true}, src, src)
	if err != nil {
		return err
	}
	list, err := gen.Generate(ctx, 0, now)
	if err != nil {
		return fmt.Errorf("signing the root CRL: %w (nothing was written)", err)
	}
	if revoke != nil {
		rec, err := c.record(ctx, actCARevoke, revoke.Serial, revoke)
		if err != nil {
			return err
		}
		fmt.Fprintf(env.stdout, "issuing CA %s (serial %s) revoked: %s\n", revoke.Name, revoke.Serial, revoke.Reason)
		printRecord(env.stdout, rec)
	}
	if err := writeFileExclusive(*outFile, list.DER, 0o644); err != nil {
		return fmt.Errorf("writing --out: %w", err)
	}
	kept, err := c.keep("crls", "root-"+list.Number.String()+".crl", list.DER)
	if err != nil {
		return err
	}
	rec, err := c.record(ctx, actCRLSign, "root.crl", crlSigned{Number: list.Number.String(), ThisUpdate: list.ThisUpdate,
		NextUpdate: list.NextUpdate, Entries: list.Entries, SHA256: sha256Hex(list.DER)})
	if err != nil {
		return err
	}
	out := env.stdout
	fmt.Fprintf(out, "root CRL number %s signed: %d revoked issuing CA(s)\n", list.Number, list.Entries)
	fmt.Fprintf(out, "  thisUpdate    %s\n  nextUpdate    %s\n", list.ThisUpdate.Format(time.RFC3339), list.NextUpdate.Format(time.RFC3339))
	fmt.Fprintf(out, "  CRL           %s (copy in %s)\n", *outFile, kept)
	printRecord(out, rec)
	fmt.Fprintf(out, "SHA-256 fingerprint: %s\n", fingerprint(list.DER))
	fmt.Fprintf(out, "next: on the online side, before %s: thiqa ca crl import --data D --crl %s\n",
		list.NextUpdate.Add(-14*24*time.Hour).Format(time.DateOnly), *outFile)
	return nil
}

// ceremonyRevocations is the root's revocation state as the CRL generator
// reads it: the revocations the ceremony log records, plus extra, the one
// this command is about to record.
type ceremonyRevocations struct {
	state *ceremonyState
	extra *caRevoked
}

// NextCRLNumber is one more than the last CRL number the log records.
func (r *ceremonyRevocations) NextCRLNumber(context.Context, string) (*big.Int, error) {
	if r.state.lastCRL == nil {
		return big.NewInt(1), nil
	}
	return new(big.Int).Add(r.state.lastCRL, big.NewInt(1)), nil
}

// RevokedCertificates streams the revoked issuing CAs in serial order.
func (r *ceremonyRevocations) RevokedCertificates(_ context.Context, issuer string, partition int, fn func(crl.RevokedEntry) error) error {
	if issuer != "root" || partition != 0 {
		return fmt.Errorf("the ceremony signs the root's only CRL, not %s partition %d", issuer, partition)
	}
	all := make([]caRevoked, 0, len(r.state.revoked)+1)
	for _, v := range r.state.revoked {
		all = append(all, v)
	}
	if r.extra != nil {
		all = append(all, *r.extra)
	}
	slices.SortFunc(all, func(a, b caRevoked) int { return strings.Compare(a.Serial, b.Serial) })
	for _, v := range all {
		serial, ok := new(big.Int).SetString(v.Serial, 16)
		if !ok {
			return fmt.Errorf("ceremony log: serial %q", v.Serial)
		}
		reason, err := revocation.ParseReason(v.Reason)
		if err != nil {
			return fmt.Errorf("ceremony log: serial %s: %w", v.Serial, err)
		}
		if err := fn(crl.RevokedEntry{Serial: serial, RevokedAt: v.RevokedAt, Reason: int(reason)}); err != nil {
			return err
		}
	}
	return nil
}
