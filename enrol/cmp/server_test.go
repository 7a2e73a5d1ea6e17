package cmp

import (
	"bytes"
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"encoding/hex"
	"errors"
	"math/big"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/thiqa/thiqa/ca"
	"github.com/thiqa/thiqa/ca/catest"
	"github.com/thiqa/thiqa/ca/revocation"
	"github.com/thiqa/thiqa/enrol"
	"github.com/thiqa/thiqa/internal/audit"
	"github.com/thiqa/thiqa/internal/audit/audittest"
	"github.com/thiqa/thiqa/store"
	"github.com/thiqa/thiqa/store/storetest"
)

// fixture is a CMP server over a real store, a throwaway CA and the
// revocation service, as `thiqa serve` wires it.
type fixture struct {
	db      *store.DB
	srv     *Server
	enrol   *enrol.Service
	pki     *catest.PKI
	revoker *revocation.Service
	cmpCert *x509.Certificate
	// auditGate, when down, makes the enrolment service's audit appends
	// fail (the CA's and the revocation service's still work).
	auditGate *audittest.Gate
	// cfg names the database; offset is how far the server's clock is
	// ahead of the wall clock (advance).
	cfg    store.Config
	offset *atomic.Int64
	// renewer is the enrolment service's Renewer: it can be made to fail.
	renewer *faultyRenewer
}

func newFixture(t *testing.T, d storetest.Dialect) *fixture {
	t.Helper()
	return newFixtureOn(t, d.NewConfig(t), nil)
}

// now is the server's clock.
func (f *fixture) now() time.Time { return time.Now().Add(time.Duration(f.offset.Load())) }

// advance moves the server's clock ahead by d.
func (f *fixture) advance(d time.Duration) { f.offset.Add(int64(d)) }

// newFixtureOn builds the server over the database cfg names; with of, it
// is another instance of of's deployment: the same CA and clock.
func newFixtureOn(t *testing.T, cfg store.Config, of *fixture) *fixture {
	t.Helper()
	f := &fixture{db: storetest.Open(t, cfg), cfg: cfg, offset: new(atomic.Int64)}
	log := audit.New(f.db, nil, nil, audit.Options{})
	f.auditGate = audittest.New(log)
	t.Cleanup(log.Close)
	if of != nil {
		f.pki, f.offset = of.pki, of.offset
	} else {
		f.pki = catest.New(t, f.db.Certificates(nil), log, "http://pki.thiqa.test")
	}
	var err error
	f.revoker, err = revocation.New(revocation.Options{Store: f.db.Revocations(), Certificates: f.db.Certificates(nil), Audit: log})
	if err != nil {
		t.Fatal(err)
	}
	secretKey, _ := rsa.GenerateKey(rand.Reader, 2048)
	// Renewal as `thiqa serve` wires it: the replaced certificate superseded.
	renewer, err := ca.NewRenewer(ca.RenewerConfig{Authority: f.pki.Authority, Store: f.db.Certificates(nil), Superseder: superseder{f.revoker}})
	if err != nil {
		t.Fatal(err)
	}
	f.renewer = &faultyRenewer{Renewer: enrol.CARenewer{Renewals: renewer}}
	f.enrol, err = enrol.New(enrol.Config{Store: f.db.Enrolments(), Issuer: f.pki.Authority, Certificates: f.db.Certificates(nil),
		Status: revocation.NewChecker(f.db.Certificates(nil), time.Millisecond, nil), Audit: f.auditGate, SecretKey: secretKey,
		Renewer: f.renewer, Now: f.now})
	if err != nil {
		t.Fatal(err)
	}
	key, cert := selfSigned(t, "Thiqa Test CMP server")
	f.cmpCert = cert
	f.srv, err = New(Config{Enrol: f.enrol, Transactions: f.db.Enrolments(), Revoker: f.revoker, Issuer: f.pki.Authority,
		Key: key, Certificate: cert, CACertificates: []*x509.Certificate{f.pki.CAs["citizen"]}, Root: f.pki.Root})
	if err != nil {
		t.Fatal(err)
	}
	return f
}

// superseder revokes a renewed certificate; one revoked already is no
// error (as revocation.Service.RevokeSuperseded does).
type superseder struct{ r *revocation.Service }

func (s superseder) RevokeSuperseded(ctx context.Context, actor, serial string) error {
	_, err := s.r.Revoke(ctx, actor, serial, "superseded", nil)
	if errors.Is(err, revocation.ErrAlreadyRevoked) {
		return nil
	}
	return err
}

func selfSigned(t *testing.T, cn string) (*ecdsa.PrivateKey, *x509.Certificate) {
	t.Helper()
	k, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(time.Now().UnixNano()), Subject: pkix.Name{CommonName: cn},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour), KeyUsage: x509.KeyUsageDigitalSignature, SubjectKeyId: []byte{1, 2, 3, 4}}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, k.Public(), k)
	if err != nil {
		t.Fatal(err)
	}
	c, _ := x509.ParseCertificate(der)
	return k, c
}

func citizen() map[string]string {
	return map[string]string{"givenName": "Aisha", "surname": "Al Harthy", "commonName": "Aisha Al Harthy", "civilNumber": "12345678", "country": "OM"}
}

// client builds requests as a CMP client does.
type client struct {
	tx     []byte
	nonce  []byte
	sender asn1.RawValue
	// protect returns the protection algorithm and the protection of part.
	ref    string
	secret string
	pbmac1 bool
	key    crypto.Signer
	cert   *x509.Certificate
	info   []infoTypeAndValue
	// now, when set, is the client's clock (messageTime).
	now func() time.Time
}

func newTx() []byte { b := make([]byte, 16); _, _ = rand.Read(b); return b }

func (c *client) message(t *testing.T, bodyType int, body []byte) []byte {
	t.Helper()
	if c.tx == nil {
		c.tx = newTx()
	}
	c.nonce = newTx()
	at := time.Now()
	if c.now != nil {
		at = c.now()
	}
	h := pkiHeader{PVNO: 2, Sender: generalName([]byte{0x30, 0}), Recipient: generalName([]byte{0x30, 0}), MessageTime: at.UTC().Truncate(time.Second),
		TransactionID: c.tx, SenderNonce: c.nonce, GeneralInfo: c.info}
	switch {
	case c.ref != "" && c.pbmac1:
		kp, _ := asn1.Marshal(pbkdf2Params{Salt: []byte("0123456789abcdef"), IterationCount: 1000, KeyLength: 32, PRF: pkix.AlgorithmIdentifier{Algorithm: oidHMACWithSHA256, Parameters: asn1.NullRawValue}})
		p, _ := asn1.Marshal(pbmac1Params{KeyDerivationFunc: pkix.AlgorithmIdentifier{Algorithm: oidPBKDF2, Parameters: asn1.RawValue{FullBytes: kp}},
			MessageAuthScheme: pkix.AlgorithmIdentifier{Algorithm: oidHMACWithSHA256, Parameters: asn1.NullRawValue}})
		h.ProtectionAlg = pkix.AlgorithmIdentifier{Algorithm: oidPBMAC1, Parameters: asn1.RawValue{FullBytes: p}}
		h.SenderKID = []byte(c.ref)
	case c.ref != "":
		p, _ := asn1.Marshal(pbmParameter{Salt: []byte("salt-salt"), OWF: pkix.AlgorithmIdentifier{Algorithm: oidSHA256}, IterationCount: 500,
			MAC: pkix.AlgorithmIdentifier{Algorithm: oidHMACWithSHA256}})
		h.ProtectionAlg = pkix.AlgorithmIdentifier{Algorithm: oidPasswordBasedMac, Parameters: asn1.RawValue{FullBytes: p}}
		h.SenderKID = []byte(c.ref)
	case c.key != nil:
		h.Sender = generalName(c.cert.RawSubject)
		h.SenderKID = c.cert.SubjectKeyId
		h.ProtectionAlg = pkix.AlgorithmIdentifier{Algorithm: signatureAlgorithms[0].oid}
	}
	hDER, _ := asn1.Marshal(h)
	bDER, _ := asn1.Marshal(asn1.RawValue{Class: asn1.ClassContextSpecific, Tag: bodyType, IsCompound: true, Bytes: body})
	part, _ := asn1.Marshal(protectedPart{Header: asn1.RawValue{FullBytes: hDER}, Body: asn1.RawValue{FullBytes: bDER}})
	msg := rawMessage{Header: asn1.RawValue{FullBytes: hDER}, Body: asn1.RawValue{FullBytes: bDER}}
	switch {
	case c.ref != "":
		mac, e := computeMAC(h.ProtectionAlg, []byte(c.secret), part)
		if e != nil {
			t.Fatal(e)
		}
		msg.Protection = asn1.BitString{Bytes: mac, BitLength: 8 * len(mac)}
	case c.key != nil:
		d := sha256.Sum256(part)
		sig, _ := c.key.Sign(rand.Reader, d[:], crypto.SHA256)
		msg.Protection = asn1.BitString{Bytes: sig, BitLength: 8 * len(sig)}
		msg.ExtraCerts = []asn1.RawValue{{FullBytes: c.cert.Raw}}
	}
	der, err := asn1.Marshal(msg)
	if err != nil {
		t.Fatal(err)
	}
	return der
}

// certReqBody is CertReqMessages for key with a signature POP by popKey.
func certReqBody(t *testing.T, key crypto.Signer, popKey crypto.Signer, oldSerial *big.Int) []byte {
	t.Helper()
	spki, _ := x509.MarshalPKIXPublicKey(key.Public())
	var spkiRaw asn1.RawValue
	_, _ = asn1.Unmarshal(spki, &spkiRaw)
	tmpl := certTemplate{PublicKey: asn1.RawValue{Class: asn1.ClassContextSpecific, Tag: 6, IsCompound: true, Bytes: spkiRaw.Bytes}}
	tDER, err := asn1.Marshal(tmpl)
	if err != nil {
		t.Fatal(err)
	}
	cr := certRequest{CertReqID: big.NewInt(0), Template: asn1.RawValue{FullBytes: tDER}}
	if oldSerial != nil {
		id, _ := asn1.Marshal(certID{Issuer: generalName([]byte{0x30, 0}), SerialNumber: oldSerial})
		cr.Controls = []attributeTypeAndValue{{Type: oidRegCtrlOldCertID, Value: asn1.RawValue{FullBytes: id}}}
	}
	crDER, _ := asn1.Marshal(cr)
	d := sha256.Sum256(crDER)
	sig, _ := popKey.Sign(rand.Reader, d[:], crypto.SHA256)
	sk, _ := asn1.Marshal(popoSigningKey{Algorithm: pkix.AlgorithmIdentifier{Algorithm: signatureAlgorithms[0].oid}, Signature: asn1.BitString{Bytes: sig, BitLength: 8 * len(sig)}})
	var skRaw asn1.RawValue
	_, _ = asn1.Unmarshal(sk, &skRaw)
	body, _ := asn1.Marshal([]certReqMsg{{CertReq: asn1.RawValue{FullBytes: crDER}, POPO: asn1.RawValue{Class: asn1.ClassContextSpecific, Tag: 1, IsCompound: true, Bytes: skRaw.Bytes}}})
	return body
}

// answer is a parsed response.
type answer struct {
	m        *message
	failInfo string
	status   int
	cert     *x509.Certificate
	// certReqID is the certificate response's certReqId.
	certReqID int
}

func parseAnswer(t *testing.T, der []byte) answer {
	t.Helper()
	m, e := parseMessage(der)
	if e != nil {
		t.Fatalf("the answer does not parse: %v", e)
	}
	a := answer{m: m, status: -1}
	switch m.bodyType {
	case bodyError:
		var em errorMsgContent
		if _, err := asn1.Unmarshal(m.body, &em); err != nil {
			t.Fatal(err)
		}
		a.status = em.Status.Status
		for f, n := range failInfoNames {
			if em.Status.FailInfo.At(int(f)) == 1 {
				a.failInfo = n
			}
		}
	case bodyIP, bodyCP, bodyKUP:
		var rep certRepMessage
		if _, err := asn1.Unmarshal(m.body, &rep); err != nil {
			t.Fatal(err)
		}
		a.status, a.certReqID = rep.Response[0].Status.Status, rep.Response[0].CertReqID
		var kp struct{ Cert asn1.RawValue }
		if _, err := asn1.Unmarshal(rep.Response[0].CertifiedKeyPair.FullBytes, &kp); err != nil {
			t.Fatal(err)
		}
		c, err := x509.ParseCertificate(kp.Cert.Bytes)
		if err != nil {
			t.Fatal(err)
		}
		a.cert = c
	default:
		a.status = 0
	}
	return a
}

func (f *fixture) enrolment(t *testing.T) (ref, secret string) {
	t.Helper()
	c, err := f.enrol.Create(t.Context(), "officer-1", "citizen-auth", citizen(), 0)
	if err != nil {
		t.Fatal(err)
	}
	return c.Reference, c.Secret
}

func (f *fixture) count(t *testing.T, action, outcome string) int {
	t.Helper()
	return storetest.AuditCount(t, f.db, action, outcome)
}

// TestCMPBadInput: malformed DER, an unknown body type, a MAC with the
// wrong secret, a reused reference, a kur signed by a foreign or a revoked
// certificate, a p10cr whose CSR signature fails and an oversized message
// each get an error message with the right failInfo, issue nothing, and
// are audited; a PBMAC1-protected ir with implicit confirmation is served.
func TestCMPBadInput(t *testing.T) {
	for _, d := range storetest.Dialects() {
		t.Run(d.Name, func(t *testing.T) {
			f := newFixture(t, d)
			ctx := t.Context()
			issued := func() int { return f.count(t, "certificate.issue", "success") }
			refused := func() int { return f.count(t, enrol.ActionRefused, "refused") }
			expectFail := func(what string, der []byte, want string) {
				t.Helper()
				before, beforeRefused := issued(), refused()
				a := parseAnswer(t, f.srv.Handle(ctx, der, ""))
				if a.m.bodyType != bodyError || a.failInfo != want || a.status != statusRejection {
					t.Fatalf("%s: body %s failInfo %q, want error %s", what, bodyName(a.m.bodyType), a.failInfo, want)
				}
				if issued() != before {
					t.Fatalf("%s: a certificate was issued", what)
				}
				if refused() != beforeRefused+1 {
					t.Fatalf("%s: the refusal was not audited", what)
				}
			}
			k1, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
			ref, secret := f.enrolment(t)

			expectFail("malformed DER", []byte{0x30, 0x03, 0x02, 0x01}, "badDataFormat")
			good := (&client{ref: ref, secret: secret}).message(t, bodyIR, certReqBody(t, k1, k1, nil))
			expectFail("trailing bytes", append(append([]byte{}, good...), 0), "badDataFormat")
			expectFail("unknown body type", (&client{ref: ref, secret: secret}).message(t, 9, []byte{0x30, 0}), "badRequest")
			expectFail("wrong secret", (&client{ref: ref, secret: "WRONG"}).message(t, bodyIR, certReqBody(t, k1, k1, nil)), "badMessageCheck")
			expectFail("unknown reference", (&client{ref: "AAAAAAAAAAAAAAAA", secret: secret}).message(t, bodyIR, certReqBody(t, k1, k1, nil)), "badMessageCheck")
			expectFail("unprotected ir", (&client{}).message(t, bodyIR, certReqBody(t, k1, k1, nil)), "badMessageCheck")
			other, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
			expectFail("POP by another key", (&client{ref: ref, secret: secret}).message(t, bodyIR, certReqBody(t, k1, other, nil)), "badPOP")

			// p10cr whose CSR signature fails.
			csr, _ := x509.CreateCertificateRequest(rand.Reader, &x509.CertificateRequest{Subject: pkix.Name{CommonName: "x"}}, k1)
			csr[len(csr)-3] ^= 0xff
			expectFail("p10cr with a bad signature", (&client{ref: ref, secret: secret}).message(t, bodyP10CR, csr), "badPOP")

			// Oversized.
			before := refused()
			rec := httptest.NewRecorder()
			f.srv.ServeHTTP(rec, httptest.NewRequest(http.MethodPost, "/.well-known/cmp", bytes.NewReader(make([]byte, MaxMessage+1))))
			if a := parseAnswer(t, rec.Body.Bytes()); rec.Code != http.StatusOK || a.failInfo != "badRequest" || refused() != before+1 {
				t.Fatalf("oversized: %d %q", rec.Code, a.failInfo)
			}

			// The good request after every refusal: the enrolment is still
			// open. Implicit confirmation asked for and granted.
			cl := &client{ref: ref, secret: secret, pbmac1: true, info: []infoTypeAndValue{{Type: oidImplicitConfirm, Value: asn1.RawValue{FullBytes: asn1.NullBytes}}}}
			resp := f.srv.Handle(ctx, cl.message(t, bodyIR, certReqBody(t, k1, k1, nil)), "")
			a := parseAnswer(t, resp)
			if a.m.bodyType != bodyIP || a.status != statusAccepted || !a.m.hasGeneralInfo(oidImplicitConfirm) {
				t.Fatalf("PBMAC1 ir: body %s status %d failInfo %s", bodyName(a.m.bodyType), a.status, a.failInfo)
			}
			if !bytes.Equal(a.m.header.RecipNonce, cl.nonce) || !bytes.Equal(a.m.header.TransactionID, cl.tx) {
				t.Fatal("the answer does not echo the nonce and transaction ID")
			}
			mac, e := computeMAC(a.m.header.ProtectionAlg, []byte(secret), a.m.protectedBytes())
			if e != nil || !bytes.Equal(mac, a.m.raw.Protection.RightAlign()) || !a.m.header.ProtectionAlg.Algorithm.Equal(oidPBMAC1) {
				t.Fatalf("the answer's PBMAC1 does not verify: %v", e)
			}
			if !strings.Contains(a.cert.Subject.String(), "IDCOM-12345678") {
				t.Fatalf("subject %s", a.cert.Subject)
			}

			// The same transaction ID again: refused before anything else.
			expectFail("transaction ID in use", (&client{ref: ref, secret: secret, tx: cl.tx}).message(t, bodyIR, certReqBody(t, k1, k1, nil)), "transactionIdInUse")
			// The reference is used: notAuthorized.
			k2, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
			expectFail("reused reference", (&client{ref: ref, secret: secret}).message(t, bodyIR, certReqBody(t, k2, k2, nil)), "notAuthorized")

			// kur signed by a foreign certificate.
			fk, fc := selfSigned(t, "Aisha Al Harthy")
			expectFail("kur by a foreign certificate", (&client{key: fk, cert: fc}).message(t, bodyKUR, certReqBody(t, k2, k2, nil)), "signerNotTrusted")
			// kur by the holder, with the right oldCertID: a new certificate;
			// the old one is superseded.
			holder := &client{key: k1, cert: a.cert}
			expectFail("kur with the current key", holder.message(t, bodyKUR, certReqBody(t, k1, k1, a.cert.SerialNumber)), "badCertTemplate")
			expectFail("kur naming another oldCertID", holder.message(t, bodyKUR, certReqBody(t, k2, k2, big.NewInt(42))), "badCertId")
			ku := parseAnswer(t, f.srv.Handle(ctx, holder.message(t, bodyKUR, certReqBody(t, k2, k2, a.cert.SerialNumber)), ""))
			if ku.m.bodyType != bodyKUP || ku.status != statusAccepted {
				t.Fatalf("kur: %s %s", bodyName(ku.m.bodyType), ku.failInfo)
			}
			if err := ku.m.checkSignedBy(f.cmpCert); err != nil {
				t.Fatalf("the kup's signature: %v", err)
			}
			// The certConf of that kur, signed by the (now superseded) old
			// certificate, is accepted; a second one is not.
			hash := sha256.Sum256(ku.cert.Raw)
			conf, _ := asn1.Marshal([]certStatus{{CertHash: hash[:], CertReqID: big.NewInt(0)}})
			if pc := parseAnswer(t, f.srv.Handle(ctx, holder.message(t, bodyCertConf, conf), "")); pc.m.bodyType != bodyPKIConf {
				t.Fatalf("certConf: %s %s", bodyName(pc.m.bodyType), pc.failInfo)
			}
			// kur signed by the superseded (revoked) certificate.
			k3, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
			expectFail("kur by a revoked certificate", (&client{key: k1, cert: a.cert}).message(t, bodyKUR, certReqBody(t, k3, k3, nil)), "certRevoked")
			// rr of somebody else's certificate by a holder.
			rd, _ := asn1.Marshal(certTemplate{SerialNumber: asn1.RawValue{Class: asn1.ClassContextSpecific, Tag: 1, Bytes: []byte{0x42}}})
			rr, _ := asn1.Marshal([]revDetails{{CertDetails: asn1.RawValue{FullBytes: rd}}})
			expectFail("rr of another certificate", (&client{key: k2, cert: ku.cert}).message(t, bodyRR, rr), "notAuthorized")

			// A key reported compromised is never certified again, whatever
			// the protocol: the enrolment stays open for another key.
			if _, err := f.revoker.Revoke(ctx, "officer-1", hex.EncodeToString(ku.cert.SerialNumber.Bytes()), "keyCompromise", nil); err != nil {
				t.Fatal(err)
			}
			ref2, secret2 := f.enrolment(t)
			before = f.count(t, "certificate.issue", "refused")
			a2 := parseAnswer(t, f.srv.Handle(ctx, (&client{ref: ref2, secret: secret2}).message(t, bodyIR, certReqBody(t, k2, k2, nil)), ""))
			if a2.failInfo != "badCertTemplate" || f.count(t, "certificate.issue", "refused") != before+1 {
				t.Fatalf("ir with a blocked key: %s %s", bodyName(a2.m.bodyType), a2.failInfo)
			}
			if e, err := f.enrol.Lookup(ctx, ref2); err != nil || e.State != enrol.StateOpen {
				t.Fatalf("the enrolment after a refusal: %+v %v", e, err)
			}
		})
	}
}

// checkSignedBy verifies a signed answer's protection with cert.
func (m *message) checkSignedBy(cert *x509.Certificate) error {
	if e := checkSignature(cert.PublicKey, m.header.ProtectionAlg, m.protectedBytes(), m.raw.Protection.RightAlign()); e != nil {
		return e
	}
	return nil
}

// TestCMPGenmAndRejectedCertificate: genm answers the CA certificates
// (also for an empty genm, and unprotected: they are public) and
// rootCaKeyUpdate without a value (no root update under way); a certConf
// that rejects the certificate gets pkiConf and revokes it; a second
// certConf is refused.
func TestCMPGenmAndRejectedCertificate(t *testing.T) {
	f := newFixture(t, storetest.Dialects()[0])
	ctx := t.Context()
	for _, asked := range [][]infoTypeAndValue{nil, {{Type: oidCACerts}}, {{Type: oidRootCACert}}} {
		body, _ := asn1.Marshal(asked)
		if asked == nil {
			body = []byte{0x30, 0}
		}
		a := parseAnswer(t, f.srv.Handle(ctx, (&client{}).message(t, bodyGenM, body), ""))
		if a.m.bodyType != bodyGenP {
			t.Fatalf("genm %v: %s %s", asked, bodyName(a.m.bodyType), a.failInfo)
		}
		var got []infoTypeAndValue
		if _, err := asn1.Unmarshal(a.m.body, &got); err != nil || len(got) != 1 {
			t.Fatalf("genp: %v %v", got, err)
		}
		switch {
		case asked != nil && asked[0].Type.Equal(oidRootCACert):
			if !got[0].Type.Equal(oidRootCAKeyUpdate) || len(got[0].Value.FullBytes) != 0 {
				t.Fatalf("rootCaCert answered %v", got[0].Type)
			}
		default:
			var certs []asn1.RawValue
			if _, err := asn1.Unmarshal(got[0].Value.FullBytes, &certs); err != nil || !got[0].Type.Equal(oidCACerts) || len(certs) != 2 ||
				!bytes.Equal(certs[1].FullBytes, f.pki.Root.Raw) {
				t.Fatalf("caCerts: %d certificates, %v", len(certs), err)
			}
		}
		if err := a.m.checkSignedBy(f.cmpCert); err != nil {
			t.Fatalf("genp signature: %v", err)
		}
	}

	ref, secret := f.enrolment(t)
	k, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	cl := &client{ref: ref, secret: secret}
	ip := parseAnswer(t, f.srv.Handle(ctx, cl.message(t, bodyIR, certReqBody(t, k, k, nil)), ""))
	if ip.m.bodyType != bodyIP || ip.m.hasGeneralInfo(oidImplicitConfirm) {
		t.Fatalf("ir: %s", bodyName(ip.m.bodyType))
	}
	hash := sha256.Sum256(ip.cert.Raw)
	wrong := sha256.Sum256([]byte("another certificate"))
	bad, _ := asn1.Marshal([]certStatus{{CertHash: wrong[:], CertReqID: big.NewInt(0)}})
	if a := parseAnswer(t, f.srv.Handle(ctx, cl.message(t, bodyCertConf, bad), "")); a.failInfo != "badCertId" {
		t.Fatalf("certConf with a wrong hash: %s %s", bodyName(a.m.bodyType), a.failInfo)
	}
	reject, _ := asn1.Marshal([]certStatus{{CertHash: hash[:], CertReqID: big.NewInt(0), StatusInfo: pkiStatusInfo{Status: statusRejection, FailInfo: BadCertTemplate.bits()}}})
	if a := parseAnswer(t, f.srv.Handle(ctx, cl.message(t, bodyCertConf, reject), "")); a.m.bodyType != bodyPKIConf {
		t.Fatalf("rejecting certConf: %s %s", bodyName(a.m.bodyType), a.failInfo)
	}
	rec, err := f.db.Certificates(nil).GetCertificate(ctx, hex.EncodeToString(ip.cert.SerialNumber.Bytes()))
	if err != nil || !rec.Revoked {
		t.Fatalf("the rejected certificate is not revoked: %+v %v", rec, err)
	}
	if a := parseAnswer(t, f.srv.Handle(ctx, cl.message(t, bodyCertConf, reject), "")); a.failInfo != "certConfirmed" {
		t.Fatalf("second certConf: %s %s", bodyName(a.m.bodyType), a.failInfo)
	}
}

// A p10cr has no certReqId: its cp carries -1 (RFC 9810 §5.3.4), where an
// ir's carries the request's own, and its certConf (certReqId -1) closes
// the transaction.
func TestCMPP10CRAnswersCertReqIDMinusOne(t *testing.T) {
	f := newFixture(t, storetest.Dialects()[0])
	ctx := t.Context()
	k, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	csr, err := x509.CreateCertificateRequest(rand.Reader, &x509.CertificateRequest{Subject: pkix.Name{CommonName: "p10cr"}}, k)
	if err != nil {
		t.Fatal(err)
	}
	ref, secret := f.enrolment(t)
	cl := &client{ref: ref, secret: secret}
	cp := parseAnswer(t, f.srv.Handle(ctx, cl.message(t, bodyP10CR, csr), ""))
	if cp.m.bodyType != bodyCP || cp.status != statusAccepted || cp.certReqID != -1 {
		t.Fatalf("p10cr: %s status %d %s, certReqId %d (want cp, accepted, -1)", bodyName(cp.m.bodyType), cp.status, cp.failInfo, cp.certReqID)
	}
	hash := sha256.Sum256(cp.cert.Raw)
	conf, _ := asn1.Marshal([]certStatus{{CertHash: hash[:], CertReqID: big.NewInt(-1)}})
	if pc := parseAnswer(t, f.srv.Handle(ctx, cl.message(t, bodyCertConf, conf), "")); pc.m.bodyType != bodyPKIConf {
		t.Fatalf("certConf: %s %s", bodyName(pc.m.bodyType), pc.failInfo)
	}

	k2, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	ref, secret = f.enrolment(t)
	ip := parseAnswer(t, f.srv.Handle(ctx, (&client{ref: ref, secret: secret}).message(t, bodyIR, certReqBody(t, k2, k2, nil)), ""))
	if ip.m.bodyType != bodyIP || ip.certReqID != 0 {
		t.Fatalf("ir: %s, certReqId %d (want ip, 0)", bodyName(ip.m.bodyType), ip.certReqID)
	}
}
