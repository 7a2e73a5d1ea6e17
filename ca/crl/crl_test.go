package crl

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"errors"
	"math/big"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/thiqa/thiqa/internal/testenv"
)

func runOpenSSL(t *testing.T, args ...string) string {
	t.Helper()
	out, _ := exec.Command(testenv.Tool(t, "openssl"), args...).CombinedOutput()
	return string(out)
}

func TestOpenSSLVerifiesCRLAndRevocation(t *testing.T) {
	h := newHierarchy(t)
	set := settings(t, 1)
	revokedSerial, goodSerial := big.NewInt(0x1234567890), big.NewInt(0x7777777)
	url := PartitionURL(set.BaseURL, "citizen", revokedSerial, 1)
	if url != "http://pki.thiqa.test/crl/citizen.crl" {
		t.Fatalf("PartitionURL = %q", url)
	}
	revoked, good := h.leaf(t, revokedSerial, url), h.leaf(t, goodSerial, url)
	src := &memRevoked{partitions: 1, entries: []RevokedEntry{
		{Serial: revokedSerial, RevokedAt: time.Now().Add(-time.Minute), Reason: ReasonKeyCompromise},
		{Serial: big.NewInt(99), RevokedAt: time.Now().Add(-time.Hour), Reason: ReasonUnspecified},
	}}
	g, err := NewGenerator(set, Issuer{Name: "citizen", Cert: h.ca, Signer: h.caKey}, &memNumbers{}, src)
	if err != nil {
		t.Fatal(err)
	}
	c, err := g.Generate(context.Background(), 0, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	if c.Entries != 2 || c.Name != "citizen.crl" || c.Number.Int64() != 1 {
		t.Fatalf("CRL %+v", c)
	}
	// Go's parser agrees on the content.
	parsed, err := x509.ParseRevocationList(c.DER)
	if err != nil {
		t.Fatal(err)
	}
	if err := parsed.CheckSignatureFrom(h.ca); err != nil {
		t.Fatal(err)
	}
	if len(parsed.RevokedCertificateEntries) != 2 || parsed.RevokedCertificateEntries[0].ReasonCode != 1 ||
		len(parsed.RevokedCertificateEntries[1].Extensions) != 0 {
		t.Fatalf("entries %+v", parsed.RevokedCertificateEntries)
	}

	dir := t.TempDir()
	crlDER := filepath.Join(dir, "citizen.crl")
	os.WriteFile(crlDER, c.DER, 0o600)
	caPEM := writePEM(t, dir, "ca.pem", "CERTIFICATE", h.ca.Raw)
	chain := writePEM(t, dir, "chain.pem", "CERTIFICATE", h.root.Raw, h.ca.Raw)
	crlPEM := writePEM(t, dir, "crl.pem", "X509 CRL", c.DER)
	if out := runOpenSSL(t, "crl", "-inform", "DER", "-in", crlDER, "-CAfile", caPEM, "-noout"); !strings.Contains(out, "verify OK") {
		t.Fatalf("openssl crl: %s", out)
	}
	text := runOpenSSL(t, "crl", "-inform", "DER", "-in", crlDER, "-noout", "-text")
	for _, want := range []string{"Version 2", "X509v3 CRL Number", "Key Compromise", "X509v3 Issuing Distribution Point: critical",
		"http://pki.thiqa.test/crl/citizen.crl", "Only User Certificates", "X509v3 Authority Key Identifier"} {
		if !strings.Contains(text, want) {
			t.Errorf("openssl crl -text lacks %q:\n%s", want, text)
		}
	}
	leafR := writePEM(t, dir, "revoked.pem", "CERTIFICATE", revoked.Raw)
	leafG := writePEM(t, dir, "good.pem", "CERTIFICATE", good.Raw)
	if out := runOpenSSL(t, "verify", "-crl_check", "-CAfile", chain, "-CRLfile", crlPEM, leafR); !strings.Contains(out, "certificate revoked") {
		t.Fatalf("revoked leaf: %s", out)
	}
	if out := runOpenSSL(t, "verify", "-crl_check", "-CAfile", chain, "-CRLfile", crlPEM, leafG); !strings.Contains(out, leafG+": OK") {
		t.Fatalf("good leaf: %s", out)
	}
}

func TestPartitionedCRLs(t *testing.T) {
	const parts = 4
	h := newHierarchy(t)
	set := settings(t, parts)
	src := &memRevoked{partitions: parts}
	var leaves []*x509.Certificate
	for i := range 12 {
		s := big.NewInt(int64(1000 + i))
		leaves = append(leaves, h.leaf(t, s, PartitionURL(set.BaseURL, "citizen", s, parts)))
		src.entries = append(src.entries, RevokedEntry{Serial: s, RevokedAt: time.Now().Add(-time.Minute), Reason: ReasonSuperseded})
	}
	g, err := NewGenerator(set, Issuer{Name: "citizen", Cert: h.ca, Signer: h.caKey}, &memNumbers{}, src)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	chain := writePEM(t, dir, "chain.pem", "CERTIFICATE", h.root.Raw, h.ca.Raw)
	if got := g.PartitionNumbers(); len(got) != parts+1 || got[0] != 0 || got[parts] != parts {
		t.Fatalf("partitions %v", got)
	}
	crls := make([]string, parts+1)
	total := 0
	for _, p := range g.PartitionNumbers() {
		c, err := g.Generate(context.Background(), p, time.Now())
		if err != nil {
			t.Fatal(err)
		}
		name := "citizen-" + strconv.Itoa(p) + ".crl"
		if p == 0 {
			name = "citizen.crl" // the whole-CA CRL of certificates issued before partitioning
		}
		if want := URL(set.BaseURL, "citizen", p); want != set.BaseURL+"/crl/"+name || c.Name != name {
			t.Fatalf("partition %d name %q url %q", p, c.Name, want)
		}
		// Its issuingDistributionPoint names itself, critical.
		text := runOpenSSL(t, "crl", "-inform", "DER", "-in", writeFile(t, dir, name, c.DER), "-noout", "-text")
		if !strings.Contains(text, "X509v3 Issuing Distribution Point: critical") || !regexp.MustCompile(`URI:`+regexp.QuoteMeta(set.BaseURL+"/crl/"+name)+`\s`).MatchString(text) {
			t.Fatalf("partition %d IDP:\n%s", p, text)
		}
		total += c.Entries
		crls[p] = writePEM(t, dir, c.Name+".pem", "X509 CRL", c.DER)
	}
	if total != len(src.entries) {
		t.Fatalf("%d entries over partitions, want %d", total, len(src.entries))
	}
	for _, leaf := range leaves[:4] {
		p := Partition(leaf.SerialNumber, parts)
		if p < 1 || p > parts {
			t.Fatalf("leaf %x in partition %d", leaf.SerialNumber, p)
		}
		lp := writePEM(t, dir, "leaf.pem", "CERTIFICATE", leaf.Raw)
		if out := runOpenSSL(t, "verify", "-crl_check", "-CAfile", chain, "-CRLfile", crls[p], lp); !strings.Contains(out, "certificate revoked") {
			t.Fatalf("leaf %x in partition %d: %s", leaf.SerialNumber, p, out)
		}
		// Another partition's CRL, or the whole-CA one, does not cover this
		// certificate (IDP mismatch).
		for _, other := range []int{p%parts + 1, 0} {
			if out := runOpenSSL(t, "verify", "-crl_check", "-CAfile", chain, "-CRLfile", crls[other], lp); !strings.Contains(out, "different CRL scope") {
				t.Fatalf("leaf %x against partition %d: %s", leaf.SerialNumber, other, out)
			}
		}
	}
}

func TestCRLNumbersStrictlyIncreaseAcrossGenerators(t *testing.T) {
	h := newHierarchy(t)
	set := settings(t, 1)
	shared := &memNumbers{}
	src := &memRevoked{partitions: 1}
	g1, _ := NewGenerator(set, Issuer{Name: "citizen", Cert: h.ca, Signer: h.caKey}, shared, src)
	g2, _ := NewGenerator(set, Issuer{Name: "citizen", Cert: h.ca, Signer: h.caKey}, shared, src)
	last := big.NewInt(0)
	for i := range 10 {
		g := g1
		if i%2 == 1 {
			g = g2
		}
		c, err := g.Generate(context.Background(), 0, time.Now())
		if err != nil {
			t.Fatal(err)
		}
		parsed, err := x509.ParseRevocationList(c.DER)
		if err != nil {
			t.Fatal(err)
		}
		if parsed.Number.Cmp(last) <= 0 {
			t.Fatalf("CRL number %v after %v", parsed.Number, last)
		}
		if parsed.RevokedCertificateEntries != nil {
			t.Fatal("empty CRL has revokedCertificates")
		}
		last = parsed.Number
	}
}

func TestGeneratorRefusesBadEntries(t *testing.T) {
	h := newHierarchy(t)
	set := settings(t, 2)
	for name, e := range map[string]RevokedEntry{
		"certificateHold": {Serial: big.NewInt(5), RevokedAt: time.Now().Add(-time.Hour), Reason: ReasonCertificateHold},
		"removeFromCRL":   {Serial: big.NewInt(5), RevokedAt: time.Now().Add(-time.Hour), Reason: ReasonRemoveFromCRL},
		"zero serial":     {Serial: big.NewInt(0), RevokedAt: time.Now().Add(-time.Hour)},
		"long serial":     {Serial: new(big.Int).Lsh(big.NewInt(1), 170), RevokedAt: time.Now().Add(-time.Hour)},
		"no time":         {Serial: big.NewInt(5)},
	} {
		g, err := NewGenerator(set, Issuer{Name: "citizen", Cert: h.ca, Signer: h.caKey}, &memNumbers{},
			&allPartitions{e})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := g.Generate(context.Background(), Partition(e.Serial, 2), time.Now()); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
	// A partition the CA does not have is refused.
	g, _ := NewGenerator(set, Issuer{Name: "citizen", Cert: h.ca, Signer: h.caKey}, &memNumbers{}, &allPartitions{})
	for _, p := range []int{-1, 3} {
		if _, err := g.Generate(context.Background(), p, time.Now()); err == nil {
			t.Errorf("partition %d of 2 generated", p)
		}
	}
	one, _ := NewGenerator(settings(t, 1), Issuer{Name: "citizen", Cert: h.ca, Signer: h.caKey}, &memNumbers{}, &allPartitions{})
	if _, err := one.Generate(context.Background(), 1, time.Now()); err == nil {
		t.Error("partition 1 of a CA with one partition generated")
	}
	// A signer that does not match the certificate is refused.
	other := newHierarchy(t)
	if _, err := NewGenerator(set, Issuer{Name: "citizen", Cert: h.ca, Signer: other.caKey}, &memNumbers{}, &memRevoked{}); err == nil {
		t.Error("mismatched signer accepted")
	}
	// Entries revoked after thisUpdate are deferred, not listed, unless
	// dated ahead of the clock (a backward step since): those are listed
	// as revoked at thisUpdate.
	at := time.Now().Add(time.Hour)
	g, _ = NewGenerator(settings(t, 1), Issuer{Name: "citizen", Cert: h.ca, Signer: h.caKey}, &memNumbers{},
		&allPartitions{{Serial: big.NewInt(5), RevokedAt: at}})
	g.now = func() time.Time { return at }
	c, err := g.Generate(context.Background(), 0, time.Now())
	if err != nil || c.Entries != 0 || c.Deferred != 1 {
		t.Fatalf("future entry: %+v %v", c, err)
	}
	g.now = time.Now
	c, err = g.Generate(context.Background(), 0, time.Now())
	if err != nil || c.Entries != 1 || c.Deferred != 0 || c.Redated != 1 {
		t.Fatalf("entry dated ahead of the clock: %+v %v", c, err)
	}
}

// allPartitions hands its entries to every partition.
type allPartitions []RevokedEntry

func (a *allPartitions) RevokedCertificates(_ context.Context, _ string, _ int, fn func(RevokedEntry) error) error {
	for _, e := range *a {
		if err := fn(e); err != nil {
			return err
		}
	}
	return nil
}

func TestConfigValidate(t *testing.T) {
	for _, c := range []Config{
		{BaseURL: "https://x.test"}, {BaseURL: "ftp://x"}, {BaseURL: "http://x", Validity: time.Minute},
		{BaseURL: "http://x", Partitions: -1}, {BaseURL: "http://x", Validity: 2 * time.Hour, RegenerateEvery: 2 * time.Hour},
	} {
		if _, err := c.Validate(); err == nil {
			t.Errorf("%+v accepted", c)
		}
	}
	s, err := Config{BaseURL: "http://x.test/"}.Validate()
	if err != nil || s.Partitions != 1 || s.BaseURL != "http://x.test" {
		t.Fatalf("%+v %v", s, err)
	}
	if PartitionsFor(1_000_000, 100_000) != 10 || PartitionsFor(0, 5) != 1 {
		t.Fatal("PartitionsFor")
	}
}

func TestAppendEntryRoundTrips(t *testing.T) {
	for _, e := range []RevokedEntry{
		{Serial: big.NewInt(1), RevokedAt: time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)},
		{Serial: big.NewInt(0x80), RevokedAt: time.Date(2051, 1, 2, 3, 4, 5, 0, time.UTC), Reason: 10},
		{Serial: new(big.Int).SetBytes([]byte{0xff, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19}), RevokedAt: time.Now(), Reason: 4},
	} {
		der := appendEntry(nil, e)
		var rc pkix.RevokedCertificate
		rest, err := asn1.Unmarshal(der, &rc)
		if err != nil || len(rest) != 0 {
			t.Fatalf("%+v: %v (%d trailing)", e, err, len(rest))
		}
		reason := 0
		if len(rc.Extensions) == 1 {
			var en asn1.Enumerated
			if _, err := asn1.Unmarshal(rc.Extensions[0].Value, &en); err != nil || !rc.Extensions[0].Id.Equal(oidReasonCode) {
				t.Fatalf("reason extension %+v: %v", rc.Extensions[0], err)
			}
			reason = int(en)
		}
		if rc.SerialNumber.Cmp(e.Serial) != 0 || !rc.RevocationTime.Equal(e.RevokedAt.Truncate(time.Second)) || reason != e.Reason {
			t.Fatalf("round trip %+v -> %+v", e, rc)
		}
	}
}

// TestLintRefuses shows the pre-signing lint runs: an entry with the unused
// reason code 7 (which checkEntry would have refused earlier) fails zlint.
func TestLintRefuses(t *testing.T) {
	h := newHierarchy(t)
	g, err := NewGenerator(settings(t, 1), Issuer{Name: "citizen", Cert: h.ca, Signer: h.caKey}, &memNumbers{}, &memRevoked{})
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now().Truncate(time.Second)
	c := &CRL{Name: "citizen.crl", Number: big.NewInt(1), ThisUpdate: now, NextUpdate: now.Add(time.Hour)}
	if err := g.lint(c, appendEntry(nil, RevokedEntry{Serial: big.NewInt(9), RevokedAt: now.Add(-time.Hour), Reason: 1})); err != nil {
		t.Fatalf("good entry: %v", err)
	}
	err = g.lint(c, appendEntry(nil, RevokedEntry{Serial: big.NewInt(9), RevokedAt: now.Add(-time.Hour), Reason: 7}))
	if !errors.Is(err, ErrLint) || !strings.Contains(err.Error(), "e_crl_has_valid_reason_code") {
		t.Fatalf("reason 7: %v", err)
	}
	err = g.lint(c, appendEntry(nil, RevokedEntry{Serial: big.NewInt(9), RevokedAt: now.Add(time.Hour), Reason: 1}))
	if !errors.Is(err, ErrLint) {
		t.Fatalf("revocation after thisUpdate: %v", err)
	}
}

// TestRSAIssuer: RSA CA keys sign with sha256WithRSAEncryption (NULL
// parameters, which zlint checks) and openssl verifies the CRL.
func TestRSAIssuer(t *testing.T) {
	key, _ := rsa.GenerateKey(rand.Reader, 2048)
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(3), Subject: pkix.Name{CommonName: "RSA CA"}, NotBefore: time.Now().Add(-time.Hour),
		NotAfter: time.Now().AddDate(1, 0, 0), IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign | x509.KeyUsageCRLSign}
	der, _ := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
	ca, _ := x509.ParseCertificate(der)
	g, err := NewGenerator(settings(t, 1), Issuer{Name: "tsa", Cert: ca, Signer: key}, &memNumbers{},
		&memRevoked{partitions: 1, entries: []RevokedEntry{{Serial: big.NewInt(10), RevokedAt: time.Now().Add(-time.Minute), Reason: 5}}})
	if err != nil {
		t.Fatal(err)
	}
	c, err := g.Generate(context.Background(), 0, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	f := filepath.Join(dir, "tsa.crl")
	os.WriteFile(f, c.DER, 0o600)
	if out := runOpenSSL(t, "crl", "-inform", "DER", "-in", f, "-CAfile", writePEM(t, dir, "ca.pem", "CERTIFICATE", ca.Raw), "-noout"); !strings.Contains(out, "verify OK") {
		t.Fatalf("openssl: %s", out)
	}
}

// TestRootCRLRevokesIssuingCA: a root CRL (CACerts) makes openssl reject a
// chain through a revoked issuing CA.
func TestRootCRLRevokesIssuingCA(t *testing.T) {
	h := newHierarchy(t)
	set := settings(t, 1)
	// The issuing CA certificate names the root CRL as its distribution point.
	tmpl := *h.ca
	tmpl.CRLDistributionPoints = []string{URL(set.BaseURL, "root", 0)}
	caDER, err := x509.CreateCertificate(rand.Reader, &tmpl, h.root, h.caKey.Public(), h.rootKey)
	if err != nil {
		t.Fatal(err)
	}
	h.ca, _ = x509.ParseCertificate(caDER)
	g, err := NewGenerator(set, Issuer{Name: "root", Cert: h.root, Signer: h.rootKey, CACerts: true}, &memNumbers{},
		&memRevoked{partitions: 1, entries: []RevokedEntry{{Serial: h.ca.SerialNumber, RevokedAt: time.Now().Add(-time.Minute), Reason: ReasonCACompromise}}})
	if err != nil {
		t.Fatal(err)
	}
	rootCRL, err := g.Generate(context.Background(), 0, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	text := runOpenSSL(t, "crl", "-inform", "DER", "-in", writeFile(t, dir, "root.crl", rootCRL.DER), "-noout", "-text")
	if !strings.Contains(text, "Only CA Certificates") || !strings.Contains(text, "CA Compromise") {
		t.Fatalf("root CRL:\n%s", text)
	}
	ca := writePEM(t, dir, "ca.pem", "CERTIFICATE", h.ca.Raw)
	out := runOpenSSL(t, "verify", "-crl_check", "-CAfile", writePEM(t, dir, "root.pem", "CERTIFICATE", h.root.Raw),
		"-CRLfile", writePEM(t, dir, "root-crl.pem", "X509 CRL", rootCRL.DER), ca)
	if !strings.Contains(out, "certificate revoked") {
		t.Fatalf("revoked issuing CA: %s", out)
	}
}

func writeFile(t *testing.T, dir, name string, b []byte) string {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, b, 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// raceSource streams the entries it holds; the first time it is read it
// first calls during, which may add entries and generate another CRL.
type raceSource struct {
	memRevoked
	during func()
}

func (r *raceSource) RevokedCertificates(ctx context.Context, issuer string, partition int, fn func(RevokedEntry) error) error {
	if d := r.during; d != nil {
		r.during = nil
		// What this read sees is fixed before during runs, as a database
		// snapshot taken when the read starts.
		snapshot := slices.Clone(r.entries)
		d()
		return (&memRevoked{partitions: r.partitions, entries: snapshot}).RevokedCertificates(ctx, issuer, partition, fn)
	}
	return r.memRevoked.RevokedCertificates(ctx, issuer, partition, fn)
}

// A CRL whose read of the revocations starts before another CRL of the
// same scope is made must not carry the higher number when that other CRL
// lists a revocation it misses: a relying party keeping the highest
// number would see the certificate unrevoked.
func TestHigherCRLNumberListsLaterRevocations(t *testing.T) {
	h := newHierarchy(t)
	set := settings(t, 1)
	numbers := &memNumbers{}
	now := time.Now()
	src := &raceSource{memRevoked: memRevoked{partitions: 1}}
	slow, _ := NewGenerator(set, Issuer{Name: "citizen", Cert: h.ca, Signer: h.caKey}, numbers, src)
	other, _ := NewGenerator(set, Issuer{Name: "citizen", Cert: h.ca, Signer: h.caKey}, numbers, src)
	var fast *CRL
	src.during = func() {
		src.entries = append(src.entries, RevokedEntry{Serial: big.NewInt(4242), RevokedAt: now.Add(-time.Minute), Reason: 1})
		var err error
		if fast, err = other.Generate(context.Background(), 0, now); err != nil {
			t.Fatal(err)
		}
	}
	late, err := slow.Generate(context.Background(), 0, now)
	if err != nil {
		t.Fatal(err)
	}
	if fast == nil || fast.Entries != 1 || late.Entries != 0 {
		t.Fatalf("setup: the CRL made meanwhile lists %v entries, the slow one %d", fast, late.Entries)
	}
	if late.Number.Cmp(fast.Number) > 0 {
		t.Fatalf("the CRL that misses the revocation has number %v, above %v of the CRL that lists it", late.Number, fast.Number)
	}
}
