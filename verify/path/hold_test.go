package path

import (
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"math/big"
	"strings"
	"testing"
	"time"
)

// crlBy returns a CRL of ca numbered number with entries; delta, when not
// nil, makes it a delta CRL on that base CRL number.
func crlBy(t *testing.T, ca *testCA, number int64, delta *big.Int, thisUpdate time.Time, entries ...x509.RevocationListEntry) *x509.RevocationList {
	t.Helper()
	tmpl := &x509.RevocationList{Number: big.NewInt(number), ThisUpdate: thisUpdate, NextUpdate: thisUpdate.Add(24 * time.Hour),
		RevokedCertificateEntries: entries}
	if delta != nil {
		v, err := asn1.Marshal(delta)
		if err != nil {
			t.Fatal(err)
		}
		tmpl.ExtraExtensions = []pkix.Extension{{Id: oidDeltaInd, Critical: true, Value: v}}
	}
	der, err := x509.CreateRevocationList(rand.Reader, tmpl, ca.cert, ca.key)
	if err != nil {
		t.Fatal(err)
	}
	l, err := x509.ParseRevocationList(der)
	if err != nil {
		t.Fatal(err)
	}
	return l
}

// invalidityExt is a CRL entry invalidityDate extension (RFC 5280 §5.3.2).
func invalidityExt(t *testing.T, at time.Time) pkix.Extension {
	t.Helper()
	v, err := asn1.MarshalWithParams(at.UTC(), "generalized")
	if err != nil {
		t.Fatal(err)
	}
	return pkix.Extension{Id: oidInvalidityDate, Value: v}
}

// TestCRLCertificateHold: a CRL entry with reason certificateHold (6) is
// a suspension, not a revocation: at or after its date the status is
// INDETERMINATE/TRY_LATER (EN 319 102-1 §5.2.6: the suspension may be
// lifted), for the end entity and for a CA of the path alike; before its
// date it changes nothing, and a delta CRL's removeFromCRL (8) lifts it.
// A revocation (keyCompromise) stays REVOKED, with its invalidityDate.
func TestCRLCertificateHold(t *testing.T) {
	now := time.Now().Truncate(time.Second)
	root := issue(t, nil, caTemplate("Hold Root", now.Add(-48*time.Hour), now.Add(48*time.Hour)))
	ica := issue(t, root, caTemplate("Hold CA", now.Add(-48*time.Hour), now.Add(48*time.Hour)))
	leaf := issue(t, ica, leafTemplate("Hold Leaf", now.Add(-48*time.Hour), now.Add(48*time.Hour)))
	held := now.Add(-2 * time.Hour)
	hold := func(c *testCA) x509.RevocationListEntry {
		return x509.RevocationListEntry{SerialNumber: c.cert.SerialNumber, RevocationTime: held, ReasonCode: 6}
	}
	rootCRL := crlBy(t, root, 1, nil, now.Add(-time.Hour))
	validate := func(at time.Time, crls ...*x509.RevocationList) error {
		_, err := New(Options{Roots: []*x509.Certificate{root.cert}, Intermediates: []*x509.Certificate{ica.cert}, At: at,
			Revocation: &CRLChecker{CRLs: crls}}).Validate(leaf.cert)
		return err
	}
	wantHold := func(t *testing.T, err error, index int) {
		t.Helper()
		e, ok := err.(*Error)
		if !ok || e.Sub != TryLater || !e.Suspended() || !e.SuspendedAt.Equal(held) || e.Index != index ||
			!strings.Contains(e.Msg, "on hold (suspended) since "+held.UTC().Format(time.RFC3339)) {
			t.Fatalf("want TRY_LATER, on hold since %s, certificate %d: %v", held, index, err)
		}
	}
	t.Run("end entity on hold", func(t *testing.T) {
		wantHold(t, validate(now, rootCRL, crlBy(t, ica, 5, nil, now.Add(-time.Hour), hold(leaf))), 2)
	})
	t.Run("CA on hold", func(t *testing.T) {
		wantHold(t, validate(now, crlBy(t, root, 2, nil, now.Add(-time.Hour), hold(ica)), crlBy(t, ica, 5, nil, now.Add(-time.Hour))), 1)
	})
	t.Run("hold after the validation time", func(t *testing.T) {
		at := held.Add(-time.Minute)
		if err := validate(at, crlBy(t, root, 1, nil, at.Add(-time.Hour)), crlBy(t, ica, 5, nil, at.Add(-time.Second), hold(leaf))); err != nil {
			t.Fatalf("a hold after the validation time: %v", err)
		}
	})
	t.Run("hold lifted by a delta CRL", func(t *testing.T) {
		base := crlBy(t, ica, 5, nil, now.Add(-time.Hour), hold(leaf))
		delta := crlBy(t, ica, 6, big.NewInt(5), now.Add(-30*time.Minute),
			x509.RevocationListEntry{SerialNumber: leaf.cert.SerialNumber, RevocationTime: now.Add(-40 * time.Minute), ReasonCode: 8})
		if err := validate(now, rootCRL, base, delta); err != nil {
			t.Fatalf("hold lifted by removeFromCRL: %v", err)
		}
	})
	t.Run("put on hold by a delta CRL", func(t *testing.T) {
		base := crlBy(t, ica, 5, nil, now.Add(-time.Hour))
		delta := crlBy(t, ica, 6, big.NewInt(5), now.Add(-30*time.Minute), hold(leaf))
		wantHold(t, validate(now, rootCRL, base, delta), 2)
	})
	t.Run("revoked, keyCompromise", func(t *testing.T) {
		invalid := now.Add(-30 * time.Hour)
		e := x509.RevocationListEntry{SerialNumber: leaf.cert.SerialNumber, RevocationTime: held, ReasonCode: 1,
			ExtraExtensions: []pkix.Extension{invalidityExt(t, invalid)}}
		err := validate(now, rootCRL, crlBy(t, ica, 5, nil, now.Add(-time.Hour), e))
		pe, ok := err.(*Error)
		if !ok || pe.Sub != Revoked || pe.Suspended() || !pe.RevokedAt.Equal(held) || !pe.InvalidSince.Equal(invalid) ||
			pe.Subject != leaf.cert.Subject.String() || !strings.Contains(pe.Msg, "(reason 1)") {
			t.Fatalf("want REVOKED at %s, invalid since %s: %+v", held, invalid, err)
		}
	})
}
