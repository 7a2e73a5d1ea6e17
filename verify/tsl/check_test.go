package tsl

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/thiqa/thiqa/internal/testenv"
	"github.com/thiqa/thiqa/verify/report"
)

// corpusTSL reads a file of the shared corpus's tsl/ folder.
func corpusTSL(t *testing.T, name string) []byte {
	t.Helper()
	raw, err := os.ReadFile(filepath.Join(testenv.SharedCorpus(t), "tsl", name))
	if err != nil {
		t.Fatal(err)
	}
	return raw
}

// TestCheckCorpusLOTL: the EU LOTL verifies with its signer; with another
// signer or none it is INDETERMINATE/NO_CERTIFICATE_CHAIN_FOUND; the broken
// copy is TOTAL-FAILED/HASH_FAILURE; the unsigned copy is refused (MANIFEST.txt).
func TestCheckCorpusLOTL(t *testing.T) {
	signers, err := parsePEM(corpusTSL(t, "eu-lotl-signer.pem"))
	if err != nil {
		t.Fatal(err)
	}
	at := time.Date(2019, 10, 1, 0, 0, 0, 0, time.UTC)
	lotl := corpusTSL(t, "eu-lotl.xml")
	r := Check(lotl, CheckOptions{Signers: signers, At: at})
	if !r.Passed() || r.List == nil || r.List.Territory != "EU" || r.List.Version != 5 || r.List.SequenceNumber != 248 || !r.List.IsListOfLists() || len(r.List.Pointers) == 0 {
		t.Fatalf("LOTL: %s %s %v %+v", r.Indication, r.SubIndication, r.Errors, r.List)
	}
	t.Logf("LOTL: %d pointers, warnings %v", len(r.List.Pointers), r.Warnings)
	other, err := parsePEM([]byte(testCertPEM(t)))
	if err != nil {
		t.Fatal(err)
	}
	for name, s := range map[string]CheckOptions{"wrong signer": {Signers: other, At: at}, "no signer": {At: at}} {
		if r := Check(lotl, s); r.Indication != report.Indeterminate || r.SubIndication != report.NoCertificateChainFound {
			t.Fatalf("%s: %s %s %v", name, r.Indication, r.SubIndication, r.Errors)
		}
	}
	if r := Check(corpusTSL(t, "eu-lotl-broken-sig.xml"), CheckOptions{Signers: signers, At: at}); r.Indication != report.TotalFailed || r.SubIndication != report.HashFailure {
		t.Fatalf("broken: %s %s %v", r.Indication, r.SubIndication, r.Errors)
	}
	if r := Check(corpusTSL(t, "eu-lotl-no-sig.xml"), CheckOptions{Signers: signers, At: at}); r.Passed() || !strings.Contains(strings.Join(r.Errors, ";"), "0 XML signatures") {
		t.Fatalf("unsigned: %s %s %v", r.Indication, r.SubIndication, r.Errors)
	}
}

// testCertPEM returns a fresh self-signed certificate as PEM.
func testCertPEM(t *testing.T) string {
	t.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(7), Subject: pkix.Name{CommonName: "not the LOTL signer"},
		NotBefore: time.Date(2010, 1, 1, 0, 0, 0, 0, time.UTC), NotAfter: time.Date(2040, 1, 1, 0, 0, 0, 0, time.UTC)}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, k.Public(), k)
	if err != nil {
		t.Fatal(err)
	}
	return string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}))
}

func parsePEM(raw []byte) ([]*x509.Certificate, error) {
	var out []*x509.Certificate
	for {
		var b *pem.Block
		b, raw = pem.Decode(raw)
		if b == nil {
			return out, nil
		}
		c, err := x509.ParseCertificate(b.Bytes)
		if err != nil {
			return nil, err
		}
		out = append(out, c)
	}
}

// TestCheckCorpusNationalLists: Ireland's and Slovakia's lists give the
// version, sequence number, territory, distribution points, providers and
// services MANIFEST.txt states, and verify with the signers the LOTL names.
func TestCheckCorpusNationalLists(t *testing.T) {
	signers, err := parsePEM(corpusTSL(t, "eu-lotl-signer.pem"))
	if err != nil {
		t.Fatal(err)
	}
	at := time.Date(2019, 10, 1, 0, 0, 0, 0, time.UTC)
	lotl := Check(corpusTSL(t, "eu-lotl.xml"), CheckOptions{Signers: signers, At: at}).List
	for _, c := range []struct {
		file, territory    string
		seq, providers     int
		distributionPoints bool
		services           map[string]int
	}{
		{"ie-tl.xml", "IE", 18, 3, false, nil},
		{"sk-tl.xml", "SK", 59, 6, true, map[string]int{"National Security Authority SK": 27, "Disig a.s.": 56, "Ministry of Defence Slovak Republic": 8}},
	} {
		var ptr *Pointer
		for i, p := range lotl.Pointers {
			if p.Territory == c.territory && p.MimeType == MimeTypeTSL {
				ptr = &lotl.Pointers[i]
			}
		}
		if ptr == nil {
			t.Fatalf("the LOTL has no XML pointer for %s", c.territory)
		}
		r := Check(corpusTSL(t, c.file), CheckOptions{Signers: ptr.Signers, At: at})
		l := r.List
		if !r.Passed() || l.Version != 5 || l.SequenceNumber != c.seq || l.Territory != c.territory || len(l.Providers) != c.providers ||
			(len(l.DistributionPoints) > 0) != c.distributionPoints {
			t.Fatalf("%s: %s %s %v; version %d, sequence %d, territory %s, %d providers, distribution points %v",
				c.file, r.Indication, r.SubIndication, r.Errors, l.Version, l.SequenceNumber, l.Territory, len(l.Providers), l.DistributionPoints)
		}
		for _, p := range l.Providers {
			if want, ok := c.services[p.Name]; ok && len(p.Services) != want {
				t.Fatalf("%s: %s has %d services, want %d", c.file, p.Name, len(p.Services), want)
			}
			delete(c.services, p.Name)
		}
		if len(c.services) > 0 {
			t.Fatalf("%s: providers not found: %v", c.file, c.services)
		}
		// Unsigned for this relying party: INDETERMINATE, never used.
		if r := Check(corpusTSL(t, c.file), CheckOptions{At: at}); r.Passed() || r.SubIndication != report.NoCertificateChainFound {
			t.Fatalf("%s without signers: %s %s", c.file, r.Indication, r.SubIndication)
		}
	}
}
