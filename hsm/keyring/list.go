package keyring

import (
	"context"
	"crypto"
	"crypto/sha256"
	"crypto/x509"
	"encoding/hex"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"

	"github.com/thiqa/thiqa/hsm"
)

// WriteTable lists the private keys on tok as `thiqa keys list` prints
// them: one line per key with its URI, type, CKA_ID, the SHA-256 of its
// public key ("-" when the token does not show it) and its attributes:
// "ok" when they are those of a key Thiqa generates, else the ones that
// differ (hsm.KeyInfo.Deviations: CKA_EXTRACTABLE=true, …).
func WriteTable(ctx context.Context, w io.Writer, tok *hsm.Token) error {
	keys, err := tok.ListKeys(ctx)
	if err != nil {
		return fmt.Errorf("listing keys: %w", err)
	}
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "URI\tTYPE\tID\tSPKI-SHA256\tATTRIBUTES")
	for _, k := range keys {
		spki := "-"
		if h, err := spkiSHA256(k.Public); k.Public != nil && err == nil {
			spki = h
		}
		attrs := "ok"
		if len(k.Deviations) > 0 {
			attrs = strings.Join(k.Deviations, ",")
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", k.URI, k.Type, k.ID, spki, attrs)
	}
	return tw.Flush()
}

// spkiSHA256 is the hex SHA-256 of pub's SubjectPublicKeyInfo.
func spkiSHA256(pub crypto.PublicKey) (string, error) {
	der, err := x509.MarshalPKIXPublicKey(pub)
	if err != nil {
		return "", fmt.Errorf("encoding public key: %w", err)
	}
	sum := sha256.Sum256(der)
	return hex.EncodeToString(sum[:]), nil
}
