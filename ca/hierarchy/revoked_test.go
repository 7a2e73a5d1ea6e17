package hierarchy

import (
	"crypto/rand"
	"crypto/x509"
	"math/big"
	"os"
	"testing"
	"time"

	"github.com/thiqa/thiqa/internal/pemcert"
)

// TestRevokedGenerations: a root CRL that revokes the citizen CA's
// certificate names that generation (thiqa ca crl import warns of it:
// the servers stop issuing from it); a CRL
// revoking other serials names none.
func TestRevokedGenerations(t *testing.T) {
	w := newSubjectWorld(t, nil, nil)
	raw, err := os.ReadFile(CertPath(w.c.CertDir, "citizen"))
	if err != nil {
		t.Fatal(err)
	}
	cert, err := pemcert.Parse(raw)
	if err != nil {
		t.Fatal(err)
	}
	rootCRL := func(serial *big.Int) *x509.RevocationList {
		der, err := x509.CreateRevocationList(rand.Reader, &x509.RevocationList{Number: big.NewInt(2), ThisUpdate: time.Now(), NextUpdate: time.Now().Add(time.Hour),
			RevokedCertificateEntries: []x509.RevocationListEntry{{SerialNumber: serial, RevocationTime: time.Now(), ReasonCode: 1}}}, w.root.Cert, w.root.Key)
		if err != nil {
			t.Fatal(err)
		}
		rl, err := x509.ParseRevocationList(der)
		if err != nil {
			t.Fatal(err)
		}
		return rl
	}
	got := RevokedGenerations(w.c, rootCRL(cert.SerialNumber))
	if len(got) != 1 || got[0].CA != "citizen" || got[0].Generation != "citizen" || got[0].Serial != cert.SerialNumber.Text(16) || got[0].Reason != 1 {
		t.Fatalf("revoked generations %+v, want citizen", got)
	}
	if got := RevokedGenerations(w.c, rootCRL(big.NewInt(12345))); len(got) != 0 {
		t.Fatalf("revoked generations %+v for another serial", got)
	}
}
