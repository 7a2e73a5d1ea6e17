package verify

import (
	"crypto/x509"
	"testing"
	"time"

	"golang.org/x/crypto/ocsp"

	"github.com/thiqa/thiqa/verify/path"
)

// TestWholeSecondBoundaries pins where dating revocation information in
// whole seconds may and may not move a verdict, for a validation time
// taken at the start, the middle and the end of a second S. Issuance in
// S counts as no earlier than the validation time; revocation and hold
// dates are compared exactly: a revocation dated S (no later than the
// validation time) is final whatever "good" answer of S is beside it,
// one dated S+1 is after it; a "good" answer lifts a hold only when
// issued after the information dating the hold, not in the same second.
func TestWholeSecondBoundaries(t *testing.T) {
	p := newTestPKI(t)
	s := time.Now().Truncate(time.Second).Add(-time.Minute)
	chain := []*x509.Certificate{p.root, p.leaf}
	good := func(at time.Time) []byte { return p.ocspAnswer(t, p.leaf, ocsp.Good, at, time.Time{}, time.Time{}, 0) }
	revoked := func(issued, at time.Time, reason int) []byte { return p.ocspRevoked(t, p.leaf, issued, at, reason) }
	isGood := func(e *path.Error) bool { return e == nil }
	isRevoked := func(e *path.Error) bool { return e != nil && e.Sub == path.Revoked }
	isHeld := func(e *path.Error) bool { return e != nil && e.Suspended() }
	isStale := func(e *path.Error) bool { return e != nil && e.Sub == path.TryLater && !e.Suspended() }
	for _, frac := range []time.Duration{0, 700 * time.Millisecond, time.Second - time.Nanosecond} {
		at := s.Add(frac)
		v := path.New(path.Options{Roots: []*x509.Certificate{p.root}, At: at})
		for _, c := range []struct {
			name  string
			ocsps [][]byte
			want  func(*path.Error) bool
		}{
			{"good issued in S", [][]byte{good(s)}, isGood},
			{"good issued in S-1", [][]byte{good(s.Add(-time.Second))}, isStale},
			{"good issued in S+1", [][]byte{good(s.Add(time.Second))}, isGood},
			{"revoked at S beside good of S", [][]byte{good(s), revoked(s, s, 1)}, isRevoked},
			{"revoked at S beside good of S+1", [][]byte{good(s.Add(time.Second)), revoked(s.Add(time.Second), s, 1)}, isRevoked},
			{"revoked at S+1 beside good of S", [][]byte{good(s), revoked(s.Add(time.Second), s.Add(time.Second), 1)}, isGood},
			{"hold at S, good of S", [][]byte{revoked(s, s, ocsp.CertificateHold), good(s)}, isHeld},
			{"hold at S, good of S+1", [][]byte{revoked(s, s, ocsp.CertificateHold), good(s.Add(time.Second))}, isGood},
			{"hold at S+1, good of S", [][]byte{revoked(s.Add(time.Second), s.Add(time.Second), ocsp.CertificateHold), good(s)}, isGood},
		} {
			rd := &revocationData{ocsps: c.ocsps, memo: &ocspMemo{}}
			if err := rd.CheckRevocation(chain, 1, at, v); !c.want(err) {
				t.Errorf("at S+%v, %s: got %v", frac, c.name, err)
			}
		}
	}
}
