package ocsp

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"math/big"
	"testing"
	"time"

	xocsp "golang.org/x/crypto/ocsp"
)

// responderFrom is a responder certificate valid from nb for d.
func (p *pki) responderFrom(t testing.TB, nb time.Time, d time.Duration) ResponderCert {
	t.Helper()
	k, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	serial, _ := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 64))
	tmpl := &x509.Certificate{SerialNumber: serial, Subject: pkix.Name{Country: []string{"OM"}, CommonName: "OCSP Responder"},
		NotBefore: nb, NotAfter: nb.Add(d), KeyUsage: x509.KeyUsageDigitalSignature,
		ExtKeyUsage:     []x509.ExtKeyUsage{x509.ExtKeyUsageOCSPSigning},
		ExtraExtensions: []pkix.Extension{{Id: oidOCSPNoCheck, Value: []byte{0x05, 0x00}}}}
	return ResponderCert{Cert: mustCert(t, tmpl, p.ca, k.Public(), p.caKey), Signer: k}
}

// fixedRenewer renews with rc.
type fixedRenewer struct{ rc ResponderCert }

func (f fixedRenewer) RenewResponder(context.Context, string, *x509.Certificate) (ResponderRenewal, error) {
	return ResponderRenewal{Responder: f.rc}, nil
}

// A backward clock step just after a renewal puts the clock before the
// new responder's notBefore (the CA backdates it by a minute only): the
// responder it replaced, still valid, signs until the clock reaches it, so
// that no response is produced before its signer's validity, and none is
// refused.
func TestResponderRenewalThenBackwardClockStep(t *testing.T) {
	p := newPKI(t, "Thiqa")
	src := &memStatus{}
	src.set("citizen", 7, Status{State: Good})
	t0 := time.Now().UTC().Truncate(time.Second)
	now := t0
	old := p.responderFrom(t, t0.Add(-24*time.Hour), 30*time.Hour) // inside RenewBefore (48h)
	r, err := New(testSettings(t), []Issuer{{Name: "citizen", Cert: p.ca, Responder: old}}, src, NewCache(0), nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	r.now = func() time.Time { return now }
	next := p.responderFrom(t, t0.Add(-time.Minute), 10*24*time.Hour)
	if renewed, err := r.RenewDue(context.Background(), fixedRenewer{next}); err != nil || len(renewed) != 1 {
		t.Fatalf("renewal: %v %v", renewed, err)
	}
	signedBy := func(nonce string) (*x509.Certificate, time.Time) {
		t.Helper()
		req, _ := NewRequest(p.ca, big.NewInt(7), crypto.SHA256, []byte(nonce)) // a nonce: signed now
		der, _ := r.Respond(context.Background(), req)
		resp, err := xocsp.ParseResponse(der, p.ca)
		if err != nil || resp.Status != xocsp.Good || resp.Certificate == nil {
			t.Fatalf("OCSP answer at %s: %v %+v", now, err, resp)
		}
		if resp.ProducedAt.Before(resp.Certificate.NotBefore) || resp.NextUpdate.After(resp.Certificate.NotAfter) {
			t.Errorf("produced at %s, next update %s by a responder valid %s to %s", resp.ProducedAt, resp.NextUpdate,
				resp.Certificate.NotBefore, resp.Certificate.NotAfter)
		}
		return resp.Certificate, resp.ProducedAt
	}
	if c, _ := signedBy("clockstep-nonce-1"); !c.Equal(next.Cert) {
		t.Fatal("not signed by the renewed responder")
	}
	now = t0.Add(-3 * time.Minute) // the clock steps back
	if c, _ := signedBy("clockstep-nonce-2"); !c.Equal(old.Cert) {
		t.Fatal("before the renewed responder's notBefore, not signed by the one it replaced")
	}
	now = t0.Add(time.Second) // the clock has caught up
	if c, _ := signedBy("clockstep-nonce-3"); !c.Equal(next.Cert) {
		t.Fatal("not signed by the renewed responder once the clock reached its notBefore")
	}
}
