package verify

import (
	"crypto/x509"
	"math/big"
	"testing"
	"time"

	"golang.org/x/crypto/ocsp"

	"github.com/thiqa/thiqa/verify/path"
)

// TestCRLReadBeforeValidationTimeDatesLaterEntries: a CRL issued before
// the validation time and no longer current at it, but fresh because it
// was issued after the proven signing time, is read at its nextUpdate;
// an entry it lists dated after that and before the validation time
// still counts (it used to be taken as dated after the time read: the
// signer the CRL itself shows revoked or on hold was good).
func TestCRLReadBeforeValidationTimeDatesLaterEntries(t *testing.T) {
	p := newTestPKI(t)
	now := time.Now().Truncate(time.Second)
	v := path.New(path.Options{Roots: []*x509.Certificate{p.root}, At: now})
	chain := []*x509.Certificate{p.root, p.leaf}
	for _, c := range []struct {
		name   string
		reason int
		want   func(*path.Error) bool
	}{
		{"revoked", 1, func(e *path.Error) bool { return e != nil && e.Sub == path.Revoked }},
		{"on hold", 6, func(e *path.Error) bool { return e != nil && e.Suspended() }},
	} {
		t.Run(c.name, func(t *testing.T) {
			der := holdCRLValid(t, p, 3, now.Add(-50*time.Minute), now.Add(-40*time.Minute),
				x509.RevocationListEntry{SerialNumber: p.leaf.SerialNumber, RevocationTime: now.Add(-30 * time.Minute), ReasonCode: c.reason})
			crl, err := x509.ParseRevocationList(der)
			if err != nil {
				t.Fatal(err)
			}
			rd := &revocationData{crls: []*x509.RevocationList{crl}, memo: &ocspMemo{}, sigTime: now.Add(-time.Hour)}
			if err := rd.CheckRevocation(chain, 1, now, v); !c.want(err) {
				t.Fatalf("want %s, got %v", c.name, err)
			}
		})
	}
}

// TestOnDemandAnswerInTheSecondOfValidation: a responder that signs on
// demand and sets no nextUpdate dates its answer in whole seconds; an
// answer produced in the same second as a validation "now" taken with a
// fraction of a second is issued no earlier than the validation time
// (it was taken as older: online validation fell back to the CRL, or
// TRY_LATER, for most genuine current answers).
func TestOnDemandAnswerInTheSecondOfValidation(t *testing.T) {
	p := newTestPKI(t)
	second := time.Now().Truncate(time.Second)
	at := second.Add(700 * time.Millisecond)
	v := path.New(path.Options{Roots: []*x509.Certificate{p.root}, At: at})
	chain := []*x509.Certificate{p.root, p.leaf}
	for _, c := range []struct {
		name  string
		issue time.Time
		fresh bool
	}{
		{"in the same second", second, true},
		{"a second before", second.Add(-time.Second), false},
	} {
		t.Run(c.name, func(t *testing.T) {
			rd := &revocationData{ocsps: [][]byte{p.ocspAnswer(t, p.leaf, ocsp.Good, c.issue, time.Time{}, time.Time{}, 0)}, memo: &ocspMemo{}}
			err := rd.CheckRevocation(chain, 1, at, v)
			if c.fresh && err != nil || !c.fresh && (err == nil || err.Sub != path.TryLater) {
				t.Fatalf("fresh %v: got %v", c.fresh, err)
			}
		})
	}
}

// TestHoldAtValidationTimeNotLiftedByLaterRevocationInDelta: a complete
// CRL issued after the validation time lists the signer on hold since
// before it; a delta CRL issued later lists the certificate revoked at a
// date after the validation time but no later than the complete CRL's
// thisUpdate (a revocation requested then and processed after that CRL
// was made). At the validation time the certificate was on hold, as an
// OCSP answer saying the same makes it: the revocation dated after the
// validation time lifts nothing (the delta's entry replaced the hold
// because it was dated no later than the time the complete CRL was read
// at, its thisUpdate: PASSED with a warning).
func TestHoldAtValidationTimeNotLiftedByLaterRevocationInDelta(t *testing.T) {
	p := newTestPKI(t)
	now := time.Now().Truncate(time.Second)
	v := path.New(path.Options{Roots: []*x509.Certificate{p.root}, At: now})
	chain := []*x509.Certificate{p.root, p.leaf}
	base := holdCRLValid(t, p, 3, now.Add(10*time.Minute), now.Add(2*time.Hour),
		x509.RevocationListEntry{SerialNumber: p.leaf.SerialNumber, RevocationTime: now.Add(-30 * time.Minute), ReasonCode: 6})
	delta := holdCRL(t, p.root, p.rootKey, 4, big.NewInt(3), now.Add(20*time.Minute),
		x509.RevocationListEntry{SerialNumber: p.leaf.SerialNumber, RevocationTime: now.Add(5 * time.Minute), ReasonCode: 1})
	var crls []*x509.RevocationList
	for _, der := range [][]byte{base, delta} {
		crl, err := x509.ParseRevocationList(der)
		if err != nil {
			t.Fatal(err)
		}
		crls = append(crls, crl)
	}
	rd := &revocationData{crls: crls, memo: &ocspMemo{}}
	if err := rd.CheckRevocation(chain, 1, now, v); err == nil || !err.Suspended() {
		t.Fatalf("want on hold at the validation time, got %v (warnings %q)", err, rd.warnings)
	}
}

// TestHoldInCompleteCRLStandsWithOnlyStaleDeltas: a complete CRL current
// at the validation time lists the signer on hold since before it; a
// genuine delta CRL on it, no longer current, is replayed beside it, and
// a genuine "good" OCSP answer issued before the hold. The hold stands
// (no information issued after it says good): a stale delta makes the
// complete CRL unable to say good, not its hold unknown (the complete
// CRL was set aside whole and the old "good" answer PASSED the signer).
func TestHoldInCompleteCRLStandsWithOnlyStaleDeltas(t *testing.T) {
	p := newTestPKI(t)
	now := time.Now().Truncate(time.Second)
	v := path.New(path.Options{Roots: []*x509.Certificate{p.root}, At: now})
	chain := []*x509.Certificate{p.root, p.leaf}
	base := holdCRLValid(t, p, 3, now.Add(-8*time.Hour), now.Add(16*time.Hour),
		x509.RevocationListEntry{SerialNumber: p.leaf.SerialNumber, RevocationTime: now.Add(-9 * time.Hour), ReasonCode: 6})
	delta := holdCRL(t, p.root, p.rootKey, 4, big.NewInt(3), now.Add(-7*time.Hour)) // current until now-5h
	good := p.ocspAnswer(t, p.leaf, ocsp.Good, now.Add(-9*time.Hour-30*time.Minute), now.Add(time.Hour), time.Time{}, 0)
	for _, withDelta := range []bool{false, true} {
		ders := [][]byte{base}
		if withDelta {
			ders = append(ders, delta)
		}
		var crls []*x509.RevocationList
		for _, der := range ders {
			crl, err := x509.ParseRevocationList(der)
			if err != nil {
				t.Fatal(err)
			}
			crls = append(crls, crl)
		}
		rd := &revocationData{crls: crls, ocsps: [][]byte{good}, memo: &ocspMemo{}}
		if err := rd.CheckRevocation(chain, 1, now, v); err == nil || !err.Suspended() {
			t.Fatalf("with a stale delta %v: want on hold, got %v (warnings %q)", withDelta, err, rd.warnings)
		}
	}
}

// TestHoldDatedByDeltaStandsAsOfTheDelta: a delta CRL issued an hour ago
// lists the signer on hold since six hours ago; a genuine "good" answer
// issued three hours ago (a responder behind the CA) is older than that
// delta, so it does not lift the hold, which the delta shows standing
// after it (the hold was taken as dated by its complete CRL, issued eight
// hours ago: the older "good" lifted it and the signer PASSED).
func TestHoldDatedByDeltaStandsAsOfTheDelta(t *testing.T) {
	p := newTestPKI(t)
	now := time.Now().Truncate(time.Second)
	v := path.New(path.Options{Roots: []*x509.Certificate{p.root}, At: now})
	chain := []*x509.Certificate{p.root, p.leaf}
	base := holdCRLValid(t, p, 3, now.Add(-8*time.Hour), now.Add(16*time.Hour))
	delta := holdCRL(t, p.root, p.rootKey, 4, big.NewInt(3), now.Add(-time.Hour),
		x509.RevocationListEntry{SerialNumber: p.leaf.SerialNumber, RevocationTime: now.Add(-6 * time.Hour), ReasonCode: 6})
	good := p.ocspAnswer(t, p.leaf, ocsp.Good, now.Add(-3*time.Hour), now.Add(time.Hour), time.Time{}, 0)
	var crls []*x509.RevocationList
	for _, der := range [][]byte{base, delta} {
		crl, err := x509.ParseRevocationList(der)
		if err != nil {
			t.Fatal(err)
		}
		crls = append(crls, crl)
	}
	rd := &revocationData{crls: crls, ocsps: [][]byte{good}, memo: &ocspMemo{}}
	if err := rd.CheckRevocation(chain, 1, now, v); err == nil || !err.Suspended() {
		t.Fatalf("want on hold, got %v (warnings %q)", err, rd.warnings)
	}
}
