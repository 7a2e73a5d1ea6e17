package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"time"

	"github.com/thiqa/thiqa/ca/ceremony"
	"github.com/thiqa/thiqa/ca/crl"
	"github.com/thiqa/thiqa/ca/revocation"
)

// caCRL is `thiqa ca crl`: in the key ceremony, the offline root signs its
// CRL, after revoking an issuing CA with --revoke
// (ceremony.Folder.SignCRL).
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
	life, err := ceremony.ParseLifetime(*next)
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
	c, cfg, err := openCeremony(ctx, *dir, false)
	if err != nil {
		return err
	}
	defer c.Close()
	now := time.Now().UTC().Truncate(time.Second)
	var serial string
	if *revokeSerial != "" {
		if serial, err = revocation.NormalizeSerial(*revokeSerial); err != nil {
			return withExit(2, fmt.Errorf("--revoke: %w", err))
		}
	}
	set, err := crl.Config{Validity: life.End(now).Add(time.Second).Sub(now), BaseURL: cfg.PublicBaseURL}.Validate()
	if err != nil {
		return withExit(2, fmt.Errorf("--next-update: %w", err))
	}
	return c.SignCRL(ctx, ceremony.CRLRequest{Revoke: serial, Reason: reason, Settings: set, Now: now, Out: *outFile}, env.stdout)
}
