package ca

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"math/big"
	"strings"
	"testing"
	"time"

	"github.com/thiqa/thiqa/policies"
)

func TestIssueRefusals(t *testing.T) {
	pki := newTestPKI(t, func(t testing.TB) crypto.Signer { return p384(t) })
	good := p384(t)
	cit := policies.ProfileCitizenSigning
	with := func(mut func(m map[string]string)) map[string]string {
		m := subjectFor(cit)
		mut(m)
		return m
	}
	rsa1024, _ := rsa.GenerateKey(rand.Reader, 1024)
	p224, _ := ecdsa.GenerateKey(elliptic.P224(), rand.Reader)
	badSig := newCSR(t, good)
	blk, _ := pem.Decode(badSig)
	blk.Bytes[len(blk.Bytes)-3] ^= 0xff // flip a bit of the signature
	badSig = pem.EncodeToMemory(blk)
	// A P-224 CSR cannot be made through crypto/x509 for every Go version;
	// the public key path (service-generated) exercises the same check.
	rsaE3 := &rsa.PublicKey{N: new(big.Int).Set(good3072(t).N), E: 3}
	// A key reported compromised: refused for every profile, by CSR or not.
	blocked := p384(t)
	spki, _ := x509.MarshalPKIXPublicKey(blocked.Public())
	pki.store.blocked[sha256.Sum256(spki)] = &KeyBlock{Serial: "0badc0de", BlockedBy: "officer-1", BlockedAt: time.Now()}
	keyBlocked := func(err error) bool {
		return errors.Is(err, ErrKeyBlocked) && strings.Contains(err.Error(), "0badc0de")
	}

	cases := []struct {
		name  string
		req   Request
		check func(error) bool
	}{
		{"unknown profile", Request{Profile: "web-server", Subject: subjectFor(cit), CSR: newCSR(t, good)},
			func(err error) bool { return errors.Is(err, policies.ErrUnknownProfile) }},
		{"missing field", Request{Profile: cit, Subject: with(func(m map[string]string) { delete(m, "surname") }), CSR: newCSR(t, good)},
			subjectErr("surname")},
		{"extra field", Request{Profile: cit, Subject: with(func(m map[string]string) { m["title"] = "Dr" }), CSR: newCSR(t, good)},
			subjectErr("title")},
		{"malformed civil number", Request{Profile: cit, Subject: with(func(m map[string]string) { m["civilNumber"] = "12-34567" }), CSR: newCSR(t, good)},
			subjectErr("civilNumber")},
		{"bad CSR signature", Request{Profile: cit, Subject: subjectFor(cit), CSR: badSig},
			func(err error) bool { return errors.Is(err, ErrBadCSR) }},
		{"garbage CSR", Request{Profile: cit, Subject: subjectFor(cit), CSR: []byte("not a csr")},
			func(err error) bool { return errors.Is(err, ErrBadCSR) }},
		{"RSA-1024", Request{Profile: cit, Subject: subjectFor(cit), CSR: newCSR(t, rsa1024)}, weakKey},
		{"P-224", Request{Profile: cit, Subject: subjectFor(cit), PublicKey: p224.Public(), KeyGeneratedByService: true}, weakKey},
		{"RSA e=3", Request{Profile: cit, Subject: subjectFor(cit), PublicKey: rsaE3, KeyGeneratedByService: true}, weakKey},
		{"no CSR", Request{Profile: cit, Subject: subjectFor(cit), PublicKey: good.Public()},
			func(err error) bool { var re *RequestError; return errors.As(err, &re) }},
		{"CA not allowed", Request{Profile: cit, CA: "tsa", Subject: subjectFor(cit), CSR: newCSR(t, good)},
			func(err error) bool { var re *RequestError; return errors.As(err, &re) }},
		{"blocked key", Request{Profile: cit, Subject: subjectFor(cit), CSR: newCSR(t, blocked)}, keyBlocked},
		{"blocked key, other profile", Request{Profile: policies.ProfileCitizenAuth, Subject: subjectFor(policies.ProfileCitizenAuth), CSR: newCSR(t, blocked)}, keyBlocked},
		{"blocked key from the token", Request{Profile: cit, Subject: subjectFor(cit), PublicKey: blocked.Public(), KeyGeneratedByService: true}, keyBlocked},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			before := len(pki.audit.entries)
			_, err := pki.authority.Issue(context.Background(), c.req)
			if err == nil || !c.check(err) {
				t.Fatalf("err = %v (%T)", err, err)
			}
			if !IsRefusal(err) {
				t.Fatalf("%v not classed as a refusal", err)
			}
			if in, cs := pki.store.counts(); in != 0 || cs != 0 {
				t.Fatalf("store changed: %d intents, %d certificates", in, cs)
			}
			if len(pki.audit.entries) != before+1 || pki.audit.last().Outcome != "refused" {
				t.Fatalf("no refusal audit record: %+v", pki.audit.last())
			}
		})
	}
}

func subjectErr(field string) func(error) bool {
	return func(err error) bool {
		var se *policies.SubjectError
		return errors.As(err, &se) && se.Field == field
	}
}

func weakKey(err error) bool { var we *WeakKeyError; return errors.As(err, &we) }

func good3072(t testing.TB) *rsa.PrivateKey {
	k, err := rsa.GenerateKey(rand.Reader, 3072)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func TestCheckKeySmallFactor(t *testing.T) {
	k, _ := rsa.GenerateKey(rand.Reader, 2048)
	// A 2048-bit odd modulus with the factor 997.
	n := new(big.Int).Lsh(big.NewInt(1), 2047)
	n.Add(n, big.NewInt(997))
	n.Sub(n, new(big.Int).Mod(n, big.NewInt(997)))
	if n.Bit(0) == 0 {
		n.Add(n, big.NewInt(997))
	}
	if err := checkKey(&rsa.PublicKey{N: n, E: 65537}, nil); !weakKey(err) || n.BitLen() != 2048 || !strings.Contains(err.Error(), "small prime") {
		t.Fatalf("small factor accepted: %v", err)
	}
	if err := checkKey(&k.PublicKey, nil); err != nil {
		t.Fatal(err)
	}
	off := &ecdsa.PublicKey{Curve: elliptic.P256(), X: big.NewInt(1), Y: big.NewInt(1)}
	if err := checkKey(off, nil); !weakKey(err) {
		t.Fatalf("off-curve point accepted: %v", err)
	}
}

func TestLintRefusesBadProfile(t *testing.T) {
	// A profile whose PDS language is upper case passes nothing through
	// policies validation, so build one by hand: zlint must refuse it.
	pki := newTestPKI(t, func(t testing.TB) crypto.Signer { return p384(t) })
	prof, _ := pki.authority.profiles.Get(policies.ProfileCitizenSigning)
	bad := *prof
	bad.QC.PDS = []policies.PDSLocation{{URL: "http://pki.example.com/pds", Language: "EN"}}
	bad.Name = "bad"
	is := pki.issuers["citizen"]
	sub, _ := prof.ValidateSubject(subjectFor(policies.ProfileCitizenSigning))
	k := p384(t)
	serial, _ := newSerial(rand.Reader)
	tmpl, err := is.leafTemplate(&bad, sub, k.Public(), serial, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	der, err := is.signLintCopy(tmpl, k.Public())
	if err != nil {
		t.Fatal(err)
	}
	subDER, _ := marshalName(sub)
	qc, _, _ := qcStatementsExtension(bad.QC)
	_, err = pki.authority.linter.lint(der, expectation{profile: &bad, subject: subDER, qcExt: qc.Value, issuer: is.cert, email: sub.Email})
	var le *LintError
	if !errors.As(err, &le) {
		t.Fatalf("err = %v", err)
	}
	want := map[string]bool{"w_qcstatem_qcpds_lang_case": false, "e_qcstatem_pds_must_have_https_only": false}
	for _, n := range le.Lints {
		if _, ok := want[n]; ok {
			want[n] = true
		}
	}
	for n, seen := range want {
		if !seen {
			t.Errorf("lint %s not reported; got %v", n, le.Lints)
		}
	}
	// Own lint: a subject that is not the validated one.
	_, err = pki.authority.linter.lint(der, expectation{profile: &bad, subject: []byte{0x30, 0}, qcExt: qc.Value, issuer: is.cert, email: sub.Email})
	if !errors.As(err, &le) || !contains(le.Lints, "thiqa_subject_is_validated") {
		t.Fatalf("own lint missing: %v", err)
	}
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

func TestNewIssuerChecksKey(t *testing.T) {
	pki := newTestPKI(t, func(t testing.TB) crypto.Signer { return p384(t) })
	c := pki.issuers["citizen"].Certificate()
	if _, err := NewIssuer(c, p384(t), IssuerOptions{Name: "citizen", BaseURL: testBaseURL}); err == nil {
		t.Fatal("NewIssuer accepted a signer that does not match the certificate")
	}
	if _, err := NewIssuer(c, pki.issuers["citizen"].signer, IssuerOptions{Name: "citizen", BaseURL: "ftp://x"}); err == nil {
		t.Fatal("NewIssuer accepted a bad base URL")
	}
	if _, err := CreateIssuingCA(pki.root, p384(t), p384(t), IssuingCAConfig{Name: "x", CommonName: "x", Country: "OM", Validity: time.Hour, BaseURL: testBaseURL}); err == nil {
		t.Fatal("CreateIssuingCA accepted a root signer that does not match")
	}
	if got := IssuingCAPolicies(pki.authority.profiles, "citizen"); len(got) != 3 || got[0] != policies.OIDPolicyNCPPlus || got[1] != policies.PlaceholderCAPolicyOID || got[2] != policies.OIDPolicyQCPnQSCD {
		t.Fatalf("citizen CA policies %v", got)
	}
	if len(c.Policies) != 3 {
		t.Fatalf("citizen CA certificate policies %v", c.Policies)
	}
	if c.MaxPathLen != 0 || !c.MaxPathLenZero || c.KeyUsage != x509.KeyUsageCertSign|x509.KeyUsageCRLSign || c.IssuingCertificateURL[0] != testBaseURL+"/certs/root.crt" {
		t.Fatalf("issuing CA certificate: pathlen %d ku %b aia %v", c.MaxPathLen, c.KeyUsage, c.IssuingCertificateURL)
	}
}

func TestRSAHierarchy(t *testing.T) {
	pki := newTestPKI(t, func(t testing.TB) crypto.Signer { return good3072(t) })
	got, err := pki.authority.Issue(context.Background(), Request{Profile: policies.ProfileOrganisationSeal, Subject: subjectFor(policies.ProfileOrganisationSeal), CSR: newCSR(t, p384(t))})
	if err != nil {
		t.Fatal(err)
	}
	if got.Certificate.SignatureAlgorithm != x509.SHA256WithRSA {
		t.Fatalf("signature algorithm %s", got.Certificate.SignatureAlgorithm)
	}
	if bad := zlintFindings(t, got.Certificate); len(bad) > 0 {
		t.Fatal(bad)
	}
}
