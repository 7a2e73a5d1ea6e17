package ceremony

import (
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"path/filepath"
	"slices"
	"time"

	"github.com/thiqa/thiqa/internal/audit"
)

// ErrBroken is returned (wrapped) by Verify for a log that was edited,
// after saying so.
var ErrBroken = errors.New("the ceremony log is broken")

// Verify walks the log of the ceremony folder dir and tells w what it
// records: the root, every issuing CA with its status, the last CRL. A log
// that was edited is reported naming the first bad entry, and ErrBroken
// returned.
func Verify(ctx context.Context, dir string, w io.Writer) error {
	st := audit.NewFileStore(filepath.Join(dir, LogFile))
	rep, err := verifyLog(ctx, st)
	var le *LogError
	if errors.As(err, &le) {
		fmt.Fprintf(w, "ceremony log BROKEN at entry %d: %s (%s); %d entries verified before it\n", le.Seq, le.Detail, le.Path, rep.Verified)
		return fmt.Errorf("%w: %w", ErrBroken, err)
	}
	if err != nil {
		return err
	}
	s, err := replay(ctx, st)
	if err != nil {
		return err
	}
	fmt.Fprintf(w, "ceremony log OK: %d entries, head seq %d, hash %s\n", rep.Verified, rep.Head.Seq, hex.EncodeToString(rep.Head.Hash))
	fmt.Fprintln(w, "  (the last entry is the head: compare it with the one written down at the last ceremony)")
	if s.root != nil {
		adopted := ""
		if s.root.Adopted {
			adopted = " (adopted: its key was copied from a deployment's online token)"
		}
		fmt.Fprintf(w, "  root          %s, certificate SHA-256 %s%s\n", s.root.Subject, s.root.CertSHA256, adopted)
	}
	serials := make([]string, 0, len(s.issued))
	for serial := range s.issued {
		serials = append(serials, serial)
	}
	slices.Sort(serials)
	for _, serial := range serials {
		is := s.issued[serial]
		status := "valid"
		if r, ok := s.revoked[serial]; ok {
			status = "revoked (" + r.Reason + ")"
		}
		fmt.Fprintf(w, "  issuing CA    %s, serial %s, until %s, %s\n", is.Name, serial, is.NotAfter.Format(time.DateOnly), status)
	}
	if s.lastCRL != nil {
		fmt.Fprintf(w, "  last CRL      number %s\n", s.lastCRL)
	}
	return nil
}
