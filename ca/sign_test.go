package ca

import (
	"bytes"
	"context"
	"crypto"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"encoding/asn1"
	"errors"
	"io"
	"math/big"
	"sync"
	"testing"

	"github.com/thiqa/thiqa/internal/audit"
	"github.com/thiqa/thiqa/policies"
)

// faultySigner stands for a faulty HSM: it signs a corrupted digest (a
// well-formed signature that does not verify) or returns garbage.
type faultySigner struct {
	crypto.Signer
	garbage bool
	calls   int
}

func (f *faultySigner) Sign(r io.Reader, digest []byte, opts crypto.SignerOpts) ([]byte, error) {
	f.calls++
	if f.garbage {
		return []byte{0x30, 0x03, 0x02, 0x01, 0x00}, nil
	}
	bad := bytes.Clone(digest)
	bad[0] ^= 1
	return f.Signer.Sign(r, bad, opts)
}

// authorityWithCitizenSigner rebuilds pki's authority with the citizen CA
// signing through sg under opts.
func authorityWithCitizenSigner(t *testing.T, pki *testPKI, sg crypto.Signer, opts IssuerOptions) *Authority {
	t.Helper()
	opts.Name, opts.BaseURL = policies.IssuerCitizen, testBaseURL
	is, err := NewIssuer(pki.issuers[policies.IssuerCitizen].cert, sg, opts)
	if err != nil {
		t.Fatal(err)
	}
	a, err := NewAuthority(AuthorityConfig{Root: pki.root, Issuers: []*Issuer{is}, Profiles: pki.authority.profiles, Store: pki.store, Auditor: pki.audit})
	if err != nil {
		t.Fatal(err)
	}
	return a
}

func issueCitizen(a *Authority, t *testing.T) (*Issued, error) {
	return a.Issue(context.Background(), Request{Profile: policies.ProfileCitizenSigning,
		Subject: subjectFor(policies.ProfileCitizenSigning), CSR: newCSR(t, p384(t)), RequestedBy: "officer"})
}

func TestFaultySignatureIsNotPublished(t *testing.T) {
	for _, tc := range []struct {
		name    string
		key     func(testing.TB) crypto.Signer
		garbage bool
		opts    IssuerOptions
	}{
		{"p384-default", func(t testing.TB) crypto.Signer { return p384(t) }, false, IssuerOptions{}},
		{"p384-garbage-signer-verifies", func(t testing.TB) crypto.Signer { return p384(t) }, true, IssuerOptions{SignerVerifiesECDSA: true}},
		{"rsa-signer-verifies-ecdsa-only", func(t testing.TB) crypto.Signer { return good3072(t) }, false, IssuerOptions{SignerVerifiesECDSA: true}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			pki := newTestPKI(t, tc.key)
			sg := &faultySigner{Signer: pki.issuers[policies.IssuerCitizen].signer, garbage: tc.garbage}
			a := authorityWithCitizenSigner(t, pki, sg, tc.opts)
			got, err := issueCitizen(a, t)
			if !errors.Is(err, ErrBadSignature) || got != nil {
				t.Fatalf("Issue with a faulty CA signer: got %v, err %v; want ErrBadSignature", got, err)
			}
			if sg.calls != 1 {
				t.Fatalf("signer called %d times", sg.calls)
			}
			if _, certs := pki.store.counts(); certs != 0 {
				t.Fatalf("%d certificates stored after a faulty signature", certs)
			}
			if e := pki.audit.last(); e.Outcome != audit.OutcomeFailure || e.Details.(map[string]any)["error"] == "" {
				t.Fatalf("audit entry %+v", e)
			}
			if IsRefusal(err) {
				t.Fatal("a faulty CA signature is reported as the client's fault")
			}
		})
	}
}

// TestSignedIsLinted checks the assembled certificate: it verifies under
// the CA certificate, its TBS is the one recorded in the intent, and it is
// what x509.CreateCertificate would have produced from the same TBS.
func TestSignedIsLinted(t *testing.T) {
	for _, tc := range []struct {
		name string
		key  func(testing.TB) crypto.Signer
		opts IssuerOptions
		alg  x509.SignatureAlgorithm
	}{
		{"p384", func(t testing.TB) crypto.Signer { return p384(t) }, IssuerOptions{}, x509.ECDSAWithSHA384},
		{"p384-signer-verifies", func(t testing.TB) crypto.Signer { return p384(t) }, IssuerOptions{SignerVerifiesECDSA: true}, x509.ECDSAWithSHA384},
		{"rsa3072", func(t testing.TB) crypto.Signer { return good3072(t) }, IssuerOptions{}, x509.SHA256WithRSA},
	} {
		t.Run(tc.name, func(t *testing.T) {
			pki := newTestPKI(t, tc.key)
			is := pki.issuers[policies.IssuerCitizen]
			a := authorityWithCitizenSigner(t, pki, is.signer, tc.opts)
			got, err := issueCitizen(a, t)
			if err != nil {
				t.Fatal(err)
			}
			c := got.Certificate
			if c.SignatureAlgorithm != tc.alg {
				t.Fatalf("signature algorithm %s, want %s", c.SignatureAlgorithm, tc.alg)
			}
			if err := c.CheckSignatureFrom(is.cert); err != nil {
				t.Fatalf("issued certificate does not verify under its CA: %v", err)
			}
			in := pki.store.intents[got.Serial]
			if sha256.Sum256(c.RawTBSCertificate) != in.TBSHash {
				t.Fatal("signed TBS differs from the linted TBS of the intent")
			}
			// The same bytes as Go's own encoder would give.
			var parts struct {
				TBS, Alg asn1.RawValue
				Sig      asn1.BitString
			}
			if rest, err := asn1.Unmarshal(c.Raw, &parts); err != nil || len(rest) != 0 {
				t.Fatalf("certificate DER: %v (%d trailing bytes)", err, len(rest))
			}
			again, err := asn1.Marshal(parts)
			if err != nil || !bytes.Equal(again, c.Raw) {
				t.Fatalf("certificate DER is not canonical: %v", err)
			}
			if bad := zlintFindings(t, c); len(bad) > 0 {
				t.Fatal(bad)
			}
		})
	}
}

func TestAssembleCertificateLengths(t *testing.T) {
	alg := []byte{0x30, 0x0a, 0x06, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x04, 0x03, 0x03}
	for _, n := range []int{1, 100, 115, 116, 127, 128, 200, 255, 256, 300, 65535, 65536, 70000} {
		tbs := append([]byte{0x30}, appendDERLength(nil, n)...)
		tbs = append(tbs, bytes.Repeat([]byte{0x05}, n)...)
		for _, sl := range []int{0, 1, 103, 126, 127, 128, 255, 256, 512} {
			sig := bytes.Repeat([]byte{0xab}, sl)
			want, err := asn1.Marshal(struct {
				TBS, Alg asn1.RawValue
				Sig      asn1.BitString
			}{asn1.RawValue{FullBytes: tbs}, asn1.RawValue{FullBytes: alg}, asn1.BitString{Bytes: sig, BitLength: 8 * sl}})
			if err != nil {
				t.Fatal(err)
			}
			if got := assembleCertificate(tbs, alg, sig); !bytes.Equal(got, want) {
				t.Fatalf("tbs %d, sig %d: assembled DER differs from encoding/asn1's", n, sl)
			}
		}
	}
}

func TestWellFormedECDSA(t *testing.T) {
	k := p384(t)
	digest := make([]byte, 48)
	sig, err := k.Sign(rand.Reader, digest, crypto.SHA384)
	if err != nil {
		t.Fatal(err)
	}
	if !wellFormedECDSA(&k.PublicKey, sig) {
		t.Fatal("a real signature is reported malformed")
	}
	n := k.Curve.Params().N
	for name, bad := range map[string][]byte{
		"empty":    nil,
		"zero r":   mustMarshal(t, struct{ R, S *big.Int }{big.NewInt(0), big.NewInt(1)}),
		"r = n":    mustMarshal(t, struct{ R, S *big.Int }{n, big.NewInt(1)}),
		"trailing": append(bytes.Clone(sig), 0),
		"garbage":  {0x30, 0x03, 0x02, 0x01, 0x00},
	} {
		if wellFormedECDSA(&k.PublicKey, bad) {
			t.Errorf("%s: accepted", name)
		}
	}
}

func mustMarshal(t *testing.T, v any) []byte {
	t.Helper()
	b, err := asn1.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestConcurrentFirstIssuances: the P-384 tables are built once, by
// whichever issuance verifies first, while others wait (run with -race).
func TestConcurrentFirstIssuances(t *testing.T) {
	pki := newTestPKI(t, func(t testing.TB) crypto.Signer { return p384(t) })
	reqs := make([][]byte, 8)
	for i := range reqs {
		reqs[i] = newCSR(t, p384(t))
	}
	var wg sync.WaitGroup
	errs := make(chan error, len(reqs))
	for _, csr := range reqs {
		wg.Go(func() {
			got, err := pki.authority.Issue(context.Background(), Request{Profile: policies.ProfileCitizenSigning,
				Subject: subjectFor(policies.ProfileCitizenSigning), CSR: csr})
			if err == nil {
				err = got.Certificate.CheckSignatureFrom(pki.issuers[policies.IssuerCitizen].cert)
			}
			errs <- err
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	if is := pki.issuers[policies.IssuerCitizen]; is.p384 == nil || is.p384Err != nil {
		t.Fatalf("P-384 tables not in use: %v", is.p384Err)
	}
}
