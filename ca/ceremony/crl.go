package ceremony

import (
	"context"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"math/big"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/thiqa/thiqa/ca"
	"github.com/thiqa/thiqa/ca/crl"
	"github.com/thiqa/thiqa/ca/revocation"
	"github.com/thiqa/thiqa/internal/atomicfile"
)

// CRLRequest describes the root CRL to sign.
type CRLRequest struct {
	// Revoke is the serial (normalised hex) of an issuing CA certificate
	// to revoke first, for Reason; "" revokes nothing.
	Revoke string
	Reason revocation.Reason
	// Settings are the CRL's (its validity, the deployment's base URL).
	Settings crl.Settings
	// Now is thisUpdate (and the revocation time).
	Now time.Time
	// Out is where the CRL goes (DER); it must not exist.
	Out string
}

// SignCRL has the offline root sign its CRL (an ARL: it lists revoked
// issuing CAs only). With req.Revoke, that issuing CA certificate is
// revoked first; the revocation is recorded in the log, which is the
// ceremony's revocation state, and every later CRL lists it. The CRL is
// built and linted by the same generator as the online CRLs (ca/crl),
// with the next CRL number the log records. It writes the CRL to req.Out
// and a copy in crls/ and tells w.
func (f *Folder) SignCRL(ctx context.Context, req CRLRequest, w io.Writer) error {
	var revoke *caRevoked
	if req.Revoke != "" {
		serial := req.Revoke
		issued, ok := f.state.issued[serial]
		switch {
		case !ok:
			return fmt.Errorf("--revoke %s: the root certified no issuing CA with that serial (the ceremony log lists every one): nothing was signed", serial)
		case f.state.revoked[serial].Serial != "":
			listed := "CRL number " + fmt.Sprint(f.state.listedIn[serial]) + " lists it, and every CRL since"
			if f.state.listedIn[serial] == nil {
				// A run interrupted after recording the revocation.
				listed = "no CRL lists it yet (an interrupted run): run `thiqa ca crl` again without --revoke to sign the CRL that does"
			}
			return fmt.Errorf("--revoke %s: issuing CA %s %w (%s, at %s): nothing was signed; %s", serial, issued.Name, ErrAlreadyRevoked,
				f.state.revoked[serial].Reason, f.state.revoked[serial].RevokedAt.Format(time.RFC3339), listed)
		}
		revoke = &caRevoked{Serial: serial, Name: issued.Name, Reason: req.Reason.String(), RevokedAt: req.Now}
	}
	var list *crl.CRL
	err := f.withRoot(ctx, func(root *x509.Certificate, key Key) error {
		src := &revocations{state: f.state, extra: revoke}
		gen, err := crl.NewGenerator(req.Settings, crl.Issuer{Name: "root", Cert: root, Signer: key, CACerts: true}, src, src)
		if err != nil {
			return err
		}
		if list, err = gen.Generate(ctx, 0, req.Now); err != nil {
			return fmt.Errorf("signing the root CRL: %w (nothing was written)", err)
		}
		return nil
	})
	if err != nil {
		return err
	}
	// The CRL leaves the ceremony folder (--out) only once the log records
	// its number: else a run again would sign another CRL with the same
	// number.
	aside, err := f.setAsideUnrecordedCRL(list.Number)
	if aside != "" {
		fmt.Fprintf(w, "note: an interrupted run left CRL number %s unrecorded in the folder; it is kept as %s\n", list.Number, aside)
	}
	var kept string
	if err == nil {
		kept, err = f.keep("crls", crlName(list.Number), list.DER)
	}
	if err != nil {
		return fmt.Errorf("%w (CRL number %s was signed but neither recorded nor written to --out: run the command again)", err, list.Number)
	}
	if revoke != nil {
		rec, err := f.record(ctx, actCARevoke, revoke.Serial, revoke)
		if err != nil {
			return fmt.Errorf("%w (CRL number %s was signed, kept in %s, but not written to --out: see thiqa audit verify --ceremony %s before going on)", err, list.Number, kept, f.o.Dir)
		}
		fmt.Fprintf(w, "issuing CA %s (serial %s) revoked: %s\n", revoke.Name, revoke.Serial, revoke.Reason)
		printRecord(w, rec)
	}
	rec, err := f.record(ctx, actCRLSign, "root.crl", crlSigned{Number: list.Number.String(), ThisUpdate: list.ThisUpdate,
		NextUpdate: list.NextUpdate, Entries: list.Entries, SHA256: sha256Hex(list.DER)})
	if err != nil {
		return fmt.Errorf("%w (CRL number %s was signed, kept in %s, but not written to --out: see thiqa audit verify --ceremony %s before going on)", err, list.Number, kept, f.o.Dir)
	}
	if err := atomicfile.WriteNew(req.Out, list.DER, 0o644); err != nil {
		return fmt.Errorf("writing --out: %w (CRL number %s is signed and recorded in the ceremony log: copy %s instead)", err, list.Number, kept)
	}
	fmt.Fprintf(w, "root CRL number %s signed: %d revoked issuing CA(s)\n", list.Number, list.Entries)
	fmt.Fprintf(w, "  thisUpdate    %s\n  nextUpdate    %s\n", list.ThisUpdate.Format(time.RFC3339), list.NextUpdate.Format(time.RFC3339))
	fmt.Fprintf(w, "  CRL           %s (copy in %s)\n", req.Out, kept)
	printRecord(w, rec)
	fmt.Fprintf(w, "SHA-256 fingerprint: %s\n", ca.Fingerprint(list.DER))
	fmt.Fprintf(w, "next: on the online side, before %s: thiqa ca crl import --data D --crl %s\n",
		list.NextUpdate.Add(-14*24*time.Hour).Format(time.DateOnly), req.Out)
	return nil
}

// revocations is the root's revocation state as the CRL generator reads
// it: the revocations the log records, plus extra, the one about to be
// recorded.
type revocations struct {
	state *state
	extra *caRevoked
}

// NextCRLNumber is one more than the last CRL number the log records.
func (r *revocations) NextCRLNumber(context.Context, string) (*big.Int, error) {
	if r.state.lastCRL == nil {
		return big.NewInt(1), nil
	}
	return new(big.Int).Add(r.state.lastCRL, big.NewInt(1)), nil
}

// RevokedCertificates streams the revoked issuing CAs in serial order.
func (r *revocations) RevokedCertificates(_ context.Context, issuer string, partition int, fn func(crl.RevokedEntry) error) error {
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

// crlName is the name in crls/ of the copy of root CRL number n.
func crlName(n *big.Int) string { return "root-" + n.String() + ".crl" }

// setAsideUnrecordedCRL renames crls/root-N.crl, N a number the log does
// not record (the next one), out of the way: a run interrupted before it
// recorded the CRL left it, and it never left the folder. It returns the
// new name ("" when there was nothing to set aside).
func (f *Folder) setAsideUnrecordedCRL(n *big.Int) (string, error) {
	p := filepath.Join(f.path("crls"), crlName(n))
	raw, err := os.ReadFile(p)
	if errors.Is(err, os.ErrNotExist) {
		return "", nil
	}
	if err != nil {
		return "", fmt.Errorf("reading %s: %w", p, err)
	}
	aside := p + ".unrecorded-" + sha256Hex(raw)[:16]
	if err := os.Rename(p, aside); err != nil {
		return "", fmt.Errorf("setting aside %s, which the ceremony log does not record: %w", p, err)
	}
	return aside, nil
}
