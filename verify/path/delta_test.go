package path

import (
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"math/big"
	"testing"
	"time"
)

// deltaCRL is a CRL of name (signed by signer) numbered number; base, when
// not nil, makes it a delta CRL on that base CRL number; extra are more
// CRL extensions.
func deltaCRL(t *testing.T, signer *testCA, number int64, base *big.Int, thisUpdate time.Time, extra []pkix.Extension, entries ...x509.RevocationListEntry) *x509.RevocationList {
	t.Helper()
	tmpl := &x509.RevocationList{Number: big.NewInt(number), ThisUpdate: thisUpdate, NextUpdate: thisUpdate.Add(24 * time.Hour),
		RevokedCertificateEntries: entries, ExtraExtensions: extra}
	if base != nil {
		v, err := asn1.Marshal(base)
		if err != nil {
			t.Fatal(err)
		}
		tmpl.ExtraExtensions = append(tmpl.ExtraExtensions, pkix.Extension{Id: oidDeltaInd, Critical: true, Value: v})
	}
	der, err := x509.CreateRevocationList(rand.Reader, tmpl, signer.cert, signer.key)
	if err != nil {
		t.Fatal(err)
	}
	l, err := x509.ParseRevocationList(der)
	if err != nil {
		t.Fatal(err)
	}
	return l
}

// TestDeltaCRLRules: a delta CRL is combined with a complete CRL only as
// RFC 5280 §5.2.4 allows, so that one that should not count (older than
// the complete CRL, not the newest, not the CA's, with an unknown critical
// extension or a malformed scope) can neither lift a revocation or a
// suspension nor make the complete CRL unusable; removeFromCRL in a
// complete CRL is not relied on; a delta issued after the validation time
// counts; a hold listed first does not hide another CRL's revocation; a
// revocation in the complete CRL is final, whatever a delta says.
func TestDeltaCRLRules(t *testing.T) {
	now := time.Now().Truncate(time.Second)
	root := issue(t, nil, caTemplate("Delta Root", now.Add(-48*time.Hour), now.Add(48*time.Hour)))
	ica := issue(t, root, caTemplate("Delta CA", now.Add(-48*time.Hour), now.Add(48*time.Hour)))
	impostor := issue(t, nil, caTemplate("Delta CA", now.Add(-48*time.Hour), now.Add(48*time.Hour)))
	leaf := issue(t, ica, leafTemplate("Delta Leaf", now.Add(-48*time.Hour), now.Add(48*time.Hour)))
	rootCRL := crlBy(t, root, 1, nil, now.Add(-time.Hour))
	entry := func(reason int, at time.Time) x509.RevocationListEntry {
		return x509.RevocationListEntry{SerialNumber: leaf.cert.SerialNumber, RevocationTime: at, ReasonCode: reason}
	}
	revoked := entry(1, now.Add(-3*time.Hour))
	held := entry(6, now.Add(-3*time.Hour))
	lift := entry(8, now.Add(-50*time.Minute))
	unknownCritical := []pkix.Extension{{Id: asn1.ObjectIdentifier{1, 2, 3, 4}, Critical: true, Value: []byte{5, 0}}}
	liftCritical := lift
	liftCritical.ExtraExtensions = unknownCritical
	// issuingDistributionPoint { onlyContainsCACerts TRUE }
	otherScope := []pkix.Extension{{Id: oidIDP, Critical: true, Value: []byte{0x30, 0x03, 0x82, 0x01, 0xff}}}
	badIDP := []pkix.Extension{{Id: oidIDP, Critical: true, Value: []byte{4, 1, 0}}}
	validate := func(at time.Time, crls ...*x509.RevocationList) error {
		_, err := New(Options{Roots: []*x509.Certificate{root.cert}, Intermediates: []*x509.Certificate{ica.cert}, At: at,
			Revocation: &CRLChecker{CRLs: append([]*x509.RevocationList{rootCRL}, crls...)}}).Validate(leaf.cert)
		return err
	}
	const ok, isRevoked, onHold, tryLater = "ok", "revoked", "on hold", "try later"
	for _, c := range []struct {
		name string
		at   time.Time
		crls []*x509.RevocationList
		want string
	}{
		{name: "an older delta does not undo a newer complete CRL's revocation", want: isRevoked, crls: []*x509.RevocationList{
			crlBy(t, ica, 5, nil, now.Add(-time.Hour), revoked),
			deltaCRL(t, ica, 4, big.NewInt(3), now.Add(-2*time.Hour), nil, lift)}},
		{name: "a delta numbered as its complete CRL is not combined", want: onHold, crls: []*x509.RevocationList{
			crlBy(t, ica, 5, nil, now.Add(-time.Hour), held),
			deltaCRL(t, ica, 5, big.NewInt(4), now.Add(-30*time.Minute), nil, lift)}},
		{name: "the newest delta counts, whatever the order", want: isRevoked, crls: []*x509.RevocationList{
			crlBy(t, ica, 5, nil, now.Add(-time.Hour), held),
			deltaCRL(t, ica, 7, big.NewInt(5), now.Add(-20*time.Minute), nil, entry(1, now.Add(-30*time.Minute))),
			deltaCRL(t, ica, 6, big.NewInt(5), now.Add(-40*time.Minute), nil, lift)}},
		{name: "a delta not signed by the CA is ignored", want: isRevoked, crls: []*x509.RevocationList{
			crlBy(t, ica, 5, nil, now.Add(-time.Hour), revoked),
			deltaCRL(t, impostor, 6, big.NewInt(5), now.Add(-30*time.Minute), nil)}},
		{name: "a delta not signed by the CA lifts no hold", want: onHold, crls: []*x509.RevocationList{
			crlBy(t, ica, 5, nil, now.Add(-time.Hour), held),
			deltaCRL(t, impostor, 6, big.NewInt(5), now.Add(-30*time.Minute), nil, lift)}},
		{name: "a delta with an unknown critical extension lifts no hold", want: onHold, crls: []*x509.RevocationList{
			crlBy(t, ica, 5, nil, now.Add(-time.Hour), held),
			deltaCRL(t, ica, 6, big.NewInt(5), now.Add(-30*time.Minute), unknownCritical, lift)}},
		{name: "a delta with a malformed scope lifts no hold", want: onHold, crls: []*x509.RevocationList{
			crlBy(t, ica, 5, nil, now.Add(-time.Hour), held),
			deltaCRL(t, ica, 6, big.NewInt(5), now.Add(-30*time.Minute), badIDP, lift)}},
		{name: "a delta on a newer complete CRL lifts no hold", want: onHold, crls: []*x509.RevocationList{
			crlBy(t, ica, 5, nil, now.Add(-time.Hour), held),
			deltaCRL(t, ica, 7, big.NewInt(6), now.Add(-30*time.Minute), nil, lift)}},
		{name: "a delta of another scope lifts no hold", want: onHold, crls: []*x509.RevocationList{
			crlBy(t, ica, 5, nil, now.Add(-time.Hour), held),
			deltaCRL(t, ica, 6, big.NewInt(5), now.Add(-30*time.Minute), otherScope, lift)}},
		{name: "a delta entry with an unknown critical extension lifts no hold", want: tryLater, crls: []*x509.RevocationList{
			crlBy(t, ica, 5, nil, now.Add(-time.Hour), held),
			deltaCRL(t, ica, 6, big.NewInt(5), now.Add(-30*time.Minute), nil, liftCritical)}},
		{name: "a hold in one complete CRL does not hide a revocation in another", want: isRevoked, crls: []*x509.RevocationList{
			crlBy(t, ica, 5, nil, now.Add(-2*time.Hour), held),
			crlBy(t, ica, 6, nil, now.Add(-time.Hour), revoked)}},
		{name: "a delta's removeFromCRL does not undo a revocation", want: isRevoked, crls: []*x509.RevocationList{
			crlBy(t, ica, 5, nil, now.Add(-time.Hour), revoked),
			deltaCRL(t, ica, 6, big.NewInt(5), now.Add(-30*time.Minute), nil, lift)}},
		{name: "a delta no longer current does not hide a revocation", want: isRevoked, crls: []*x509.RevocationList{
			crlBy(t, ica, 5, nil, now.Add(-time.Hour), revoked),
			deltaCRL(t, ica, 6, big.NewInt(5), now.Add(-30*time.Hour), nil)}},
		{name: "a delta no longer current: no status", want: tryLater, crls: []*x509.RevocationList{
			crlBy(t, ica, 5, nil, now.Add(-time.Hour)),
			deltaCRL(t, ica, 6, big.NewInt(5), now.Add(-30*time.Hour), nil)}},
		{name: "a delta dating a revocation after the validation time does not lift a hold", at: now.Add(-50 * time.Minute), want: onHold,
			crls: []*x509.RevocationList{
				crlBy(t, ica, 5, nil, now.Add(-55*time.Minute), held),
				deltaCRL(t, ica, 6, big.NewInt(5), now.Add(-30*time.Minute), nil, entry(1, now.Add(-40*time.Minute)))}},
		{name: "removeFromCRL in a complete CRL", want: tryLater, crls: []*x509.RevocationList{
			crlBy(t, ica, 5, nil, now.Add(-time.Hour), lift)}},
		{name: "a delta issued after the validation time counts", at: now.Add(-45 * time.Minute), want: isRevoked, crls: []*x509.RevocationList{
			crlBy(t, ica, 5, nil, now.Add(-time.Hour)),
			deltaCRL(t, ica, 6, big.NewInt(5), now.Add(-30*time.Minute), nil, revoked)}},
		{name: "a delta issued after the validation time, nothing listed", at: now.Add(-45 * time.Minute), want: ok, crls: []*x509.RevocationList{
			crlBy(t, ica, 5, nil, now.Add(-time.Hour)),
			deltaCRL(t, ica, 6, big.NewInt(5), now.Add(-30*time.Minute), nil)}},
		{name: "a current delta lifts a hold", want: ok, crls: []*x509.RevocationList{
			crlBy(t, ica, 5, nil, now.Add(-time.Hour), held),
			deltaCRL(t, ica, 6, big.NewInt(5), now.Add(-40*time.Minute), nil, lift)}},
	} {
		t.Run(c.name, func(t *testing.T) {
			at := c.at
			if at.IsZero() {
				at = now
			}
			err := validate(at, c.crls...)
			got := ok
			if e, isErr := err.(*Error); isErr {
				switch {
				case e.Sub == Revoked:
					got = isRevoked
				case e.Suspended():
					got = onHold
				case e.Sub == TryLater:
					got = tryLater
				default:
					got = e.Error()
				}
			} else if err != nil {
				got = err.Error()
			}
			if got != c.want {
				t.Fatalf("want %s, got %s (%v)", c.want, got, err)
			}
		})
	}
}
