package revocation

import (
	"fmt"
	"io"
	"time"
)

// WriteText writes what the revocation did, a line each: the revocation
// (or the earlier one that stands), the key block, and every certificate
// with the same key revoked with it (`thiqa revoke` prints this).
func (r *Result) WriteText(w io.Writer) error {
	what := "revoked %s (CA %s, %s) at %s\n"
	if r.AlreadyRevoked {
		what = "%s was already revoked (CA %s, %s) at %s; its revocation stands\n"
	}
	if _, err := fmt.Fprintf(w, what, r.Serial, r.CA, Reason(r.Reason), r.RevokedAt.Format(time.RFC3339)); err != nil {
		return err
	}
	if r.KeyBlocked {
		if _, err := fmt.Fprintf(w, "key blocked: it can never be certified again\n"); err != nil {
			return err
		}
	}
	for _, a := range r.AlsoRevoked {
		if _, err := fmt.Fprintf(w, "also revoked %s (CA %s, same key, keyCompromise)\n", a.Serial, a.CA); err != nil {
			return err
		}
	}
	return nil
}
