package timestamp

import (
	"context"
	"crypto"
	"crypto/x509"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"fmt"
	"io/fs"
	"path/filepath"
	"strings"
	"time"

	"github.com/thiqa/thiqa/internal/atomicfile"
)

// PreviousPath is where the unit that the current one replaced is kept
// (PEM: its certificate, then its chain): after a restart while the clock
// is before the current unit's notBefore, it signs until that one is
// valid.
func (u *Units) PreviousPath() string { return filepath.Join(u.Dir, "previous.pem") }

// keepPrevious copies the unit in Dir (unit.pem and chain.pem) to
// PreviousPath before next replaces it. Nothing is kept when there is no
// unit yet or it is next already.
func (u *Units) keepPrevious(next *x509.Certificate) error {
	cur, err := readCertsPEM(u.UnitPath())
	if err != nil {
		return nil // no unit yet (or an unreadable one, which Load reports)
	}
	if cur[0].Equal(next) {
		return nil
	}
	chain, err := readCertsPEM(u.ChainPath())
	if err != nil {
		return nil // a unit without its chain cannot serve: nothing to keep
	}
	var out []byte
	for _, c := range append([]*x509.Certificate{cur[0]}, chain...) {
		out = append(out, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: c.Raw})...)
	}
	if err := atomicfile.Write(u.PreviousPath(), out, 0o644); err != nil {
		return fmt.Errorf("keeping the previous TSA unit: %w", err)
	}
	return nil
}

// ErrNoPreviousUnit means there is no previous unit that can sign now:
// none was kept, it is not valid now, or its key is no longer on the
// token.
var ErrNoPreviousUnit = errors.New("no previous TSA unit valid now")

// LoadPrevious returns the unit that current replaced when current is not
// valid yet at now (a restart just after a renewal, with the clock a
// little behind the CA's) and that one is valid at now with its key still
// on the token: it signs until current becomes valid. Otherwise it returns
// an error wrapping ErrNoPreviousUnit.
func (u *Units) LoadPrevious(ctx context.Context, current *x509.Certificate, now time.Time) (*Unit, error) {
	if !now.Before(current.NotBefore) {
		return nil, fmt.Errorf("%w: the current unit is valid", ErrNoPreviousUnit)
	}
	certs, err := readCertsPEM(u.PreviousPath())
	if errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("%w: none kept", ErrNoPreviousUnit)
	}
	if err != nil {
		return nil, fmt.Errorf("the previous TSA unit: %w", err)
	}
	cert, chain := certs[0], certs[1:]
	if len(chain) == 0 {
		return nil, fmt.Errorf("%s: the previous TSA unit has no chain", u.PreviousPath())
	}
	if cert.Equal(current) || now.Before(cert.NotBefore) || !now.Before(cert.NotAfter) {
		return nil, fmt.Errorf("%w: the one kept (serial %s) is not valid at %s", ErrNoPreviousUnit,
			hex.EncodeToString(cert.SerialNumber.Bytes()), now.UTC().Format(time.RFC3339))
	}
	if err := cert.CheckSignatureFrom(chain[0]); err != nil {
		return nil, fmt.Errorf("%s: the previous TSA unit is not issued by its chain: %w", u.PreviousPath(), err)
	}
	key, err := u.findKey(ctx, cert)
	if err != nil {
		return nil, err
	}
	if key == nil {
		return nil, fmt.Errorf("%w: the key of the one kept is no longer on the token", ErrNoPreviousUnit)
	}
	return &Unit{Key: *key, Cert: cert, Chain: chain}, nil
}

// findKey finds the key on the token, KeyLabel or one of its renewals,
// whose public key cert carries; nil when there is none.
func (u *Units) findKey(ctx context.Context, cert *x509.Certificate) (*UnitKey, error) {
	labels, err := u.Keys.Labels(ctx)
	if err != nil {
		return nil, fmt.Errorf("listing keys: %w", err)
	}
	for _, label := range labels {
		if label != u.KeyLabel && !strings.HasPrefix(label, u.KeyLabel+"-") {
			continue
		}
		k, err := u.key(ctx, label)
		if err != nil {
			return nil, fmt.Errorf("finding key %q: %w", label, err)
		}
		if pub, ok := k.Signer.Public().(interface{ Equal(crypto.PublicKey) bool }); ok && pub.Equal(cert.PublicKey) {
			return &k, nil
		}
	}
	return nil, nil
}

// UnitStatus is what the store knows of the unit certificates the CA
// issued (cmd/thiqa: the revocations the CRLs and OCSP publish).
type UnitStatus interface {
	// UnitRevoked reports whether cert, a unit certificate, was revoked;
	// an error when it cannot tell (the store does not know it as issued
	// by the TSA's CA, or cannot be read).
	UnitRevoked(ctx context.Context, cert *x509.Certificate) (bool, error)
}

// notRevoked returns nil when ServiceOptions.Status knows cert as issued
// and not revoked; otherwise an error wrapping ErrNoPreviousUnit (or the
// error it could not tell by).
func (s *Service) notRevoked(ctx context.Context, cert *x509.Certificate) error {
	serial := hex.EncodeToString(cert.SerialNumber.Bytes())
	if s.o.Status == nil {
		return fmt.Errorf("%w: the one kept (serial %s) cannot be checked for revocation", ErrNoPreviousUnit, serial)
	}
	revoked, err := s.o.Status.UnitRevoked(ctx, cert)
	if err != nil {
		return fmt.Errorf("status of the previous TSA unit (serial %s): %w", serial, err)
	}
	if revoked {
		return fmt.Errorf("%w: the one kept (serial %s) was revoked", ErrNoPreviousUnit, serial)
	}
	return nil
}
