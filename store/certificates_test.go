package store_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/thiqa/thiqa/ca"
	"github.com/thiqa/thiqa/ca/crl"
	"github.com/thiqa/thiqa/internal/audit"
	"github.com/thiqa/thiqa/policies"
	"github.com/thiqa/thiqa/signing"
	"github.com/thiqa/thiqa/store"
	"github.com/thiqa/thiqa/store/storetest"
)

// nopAudit accepts every record.
type nopAudit struct{}

func (nopAudit) Append(context.Context, audit.Entry) (audit.Record, error) {
	return audit.Record{}, nil
}

func (nopAudit) Prepare(...audit.Entry) (audit.Sealer, error) { return nil, nil }

// newAuthority builds a CA with in-process keys over the certificate store.
func newAuthority(t testing.TB, certs ca.Store) *ca.Authority {
	t.Helper()
	return newAuditedAuthority(t, certs, nopAudit{})
}

// newAuditedAuthority is newAuthority recording into aud.
func newAuditedAuthority(t testing.TB, certs ca.Store, aud ca.Auditor) *ca.Authority {
	t.Helper()
	profiles, err := policies.DefaultProfiles(policies.DefaultsConfig{})
	if err != nil {
		t.Fatal(err)
	}
	return newAuthorityWith(t, certs, aud, profiles)
}

// newAuthorityWith is newAuditedAuthority issuing profiles.
func newAuthorityWith(t testing.TB, certs ca.Store, aud ca.Auditor, profiles *policies.ProfileSet) *ca.Authority {
	t.Helper()
	key := func() *ecdsa.PrivateKey {
		k, err := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
		if err != nil {
			t.Fatal(err)
		}
		return k
	}
	rootKey, citizenKey := key(), key()
	root, err := ca.CreateRoot(rootKey, ca.RootConfig{CommonName: "Test Root", Organization: "Thiqa", Country: "OM", Validity: 10 * 365 * 24 * time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	sub, err := ca.CreateIssuingCA(root, rootKey, citizenKey, ca.IssuingCAConfig{
		Name: "citizen", CommonName: "Test Citizen CA", Organization: "Thiqa", Country: "OM",
		Validity: 5 * 365 * 24 * time.Hour, BaseURL: "http://pki.example.com", Policies: ca.IssuingCAPolicies(profiles, "citizen"),
	})
	if err != nil {
		t.Fatal(err)
	}
	is, err := ca.NewIssuer(sub, citizenKey, ca.IssuerOptions{Name: "citizen", BaseURL: "http://pki.example.com", CRLPartitions: 4})
	if err != nil {
		t.Fatal(err)
	}
	a, err := ca.NewAuthority(ca.AuthorityConfig{Root: root, Issuers: []*ca.Issuer{is}, Profiles: profiles, Store: certs, Auditor: aud})
	if err != nil {
		t.Fatal(err)
	}
	return a
}

func citizenRequest(t testing.TB) ca.Request {
	t.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	csr, err := x509.CreateCertificateRequest(rand.Reader, &x509.CertificateRequest{}, k)
	if err != nil {
		t.Fatal(err)
	}
	return ca.Request{
		Profile: policies.ProfileCitizenAuth, CSR: csr, RequestedBy: "officer-1",
		Subject: map[string]string{"givenName": "Aisha", "surname": "Al Harthy", "commonName": "Aisha Al Harthy", "civilNumber": "12345678", "country": "OM"},
	}
}

func TestCertificates(t *testing.T) {
	for _, d := range storetest.Dialects() {
		t.Run(d.Name, func(t *testing.T) {
			ctx := ctxT(t)
			db := storetest.Open(t, d.NewConfig(t))
			certs := db.Certificates(func(string) int { return 4 })
			a := newAuthority(t, certs)

			t.Run("IssueAndRead", func(t *testing.T) {
				req := citizenRequest(t)
				req.RequestID = "req-1"
				req.CredentialID = "cred-abc"
				got, err := a.Issue(ctx, req)
				if err != nil {
					t.Fatal(err)
				}
				rec, err := certs.GetCertificate(ctx, got.Serial)
				if err != nil {
					t.Fatal(err)
				}
				if string(rec.DER) != string(got.Certificate.Raw) || rec.CA != "citizen" || rec.Profile != req.Profile ||
					rec.RequestID != "req-1" || rec.CredentialID != "cred-abc" || rec.RequestedBy != "officer-1" ||
					!rec.NotAfter.Equal(got.Certificate.NotAfter) || !rec.NotBefore.Equal(got.Certificate.NotBefore) {
					t.Fatalf("stored record differs: %+v", rec)
				}
				if rec.KeyHash != sha256.Sum256(got.Certificate.RawSubjectPublicKeyInfo) {
					t.Fatal("key hash is not the SPKI hash")
				}
				byCred, err := certs.CertificateByCredential(ctx, "cred-abc")
				if err != nil || byCred.Serial != got.Serial {
					t.Fatalf("CertificateByCredential: %v, %v", byCred, err)
				}
				// The signing service's view of it.
				sc := db.SigningCredentials()
				ic, err := sc.IssuedCertificate(ctx, "cred-abc")
				if err != nil || ic.Serial != got.Serial || ic.CA != "citizen" || ic.Profile != req.Profile || string(ic.DER) != string(got.Certificate.Raw) {
					t.Fatalf("IssuedCertificate: %+v, %v", ic, err)
				}
				if _, err := sc.IssuedCertificate(ctx, "cred-none"); !errors.Is(err, signing.ErrNotFound) {
					t.Fatalf("IssuedCertificate of an unknown credential: %v", err)
				}
				want := int64(crl.Partition(got.Certificate.SerialNumber, 4))
				// The partition recorded is the one the certificate names.
				if p, err := db.QueryInt64(ctx, "SELECT crl_partition FROM certificates WHERE serial = ?", got.Serial); err != nil || p != want || p < 1 ||
					got.Certificate.CRLDistributionPoints[0] != fmt.Sprintf("http://pki.example.com/crl/citizen-%d.crl", want) {
					t.Fatalf("partition = %d, %v; want %d named by %v", p, err, want, got.Certificate.CRLDistributionPoints)
				}
				if s, err := certs.FindIssued(ctx, req.Profile, rec.KeyHash, time.Now()); err != nil || s != got.Serial {
					t.Fatalf("FindIssued = %q, %v", s, err)
				}
				if s, err := certs.FindIssued(ctx, req.Profile, rec.KeyHash, got.Certificate.NotAfter.Add(time.Second)); err != nil || s != "" {
					t.Fatalf("FindIssued after expiry = %q, %v", s, err)
				}
				// Replay of the same key and profile, and reuse of the request ID.
				if _, err := a.Issue(ctx, req); !errors.Is(err, ca.ErrDuplicateRequest) {
					t.Fatalf("replay: %v", err)
				}
				other := citizenRequest(t)
				other.RequestID = "req-1"
				if _, err := a.Issue(ctx, other); !errors.Is(err, ca.ErrDuplicateRequest) {
					t.Fatalf("request ID reuse: %v", err)
				}
			})

			t.Run("RevokedStatus", func(t *testing.T) {
				got, err := a.Issue(ctx, citizenRequest(t))
				if err != nil {
					t.Fatal(err)
				}
				if rec, err := certs.GetCertificate(ctx, got.Serial); err != nil || rec.Revoked {
					t.Fatalf("fresh certificate: %+v, %v", rec, err)
				}
				at := time.Now().Truncate(time.Second)
				if _, err := db.Revocations().Revoke(ctx, got.Serial, 1, "officer-1", at, nil); err != nil {
					t.Fatal(err)
				}
				rec, err := certs.GetCertificate(ctx, got.Serial)
				if err != nil || !rec.Revoked || rec.RevocationReason != 1 || !rec.RevokedAt.Equal(at) {
					t.Fatalf("revoked certificate: %+v, %v", rec, err)
				}
			})

			t.Run("NotFound", func(t *testing.T) {
				if _, err := certs.GetCertificate(ctx, "0badc0de"); !errors.Is(err, ca.ErrNotFound) {
					t.Fatalf("GetCertificate: %v", err)
				}
				if _, err := certs.CertificateByCredential(ctx, "cred-none"); !errors.Is(err, ca.ErrNotFound) {
					t.Fatalf("CertificateByCredential: %v", err)
				}
			})

			t.Run("DuplicateSerial", func(t *testing.T) {
				in := ca.Intent{Serial: "7e01", CA: "citizen", Profile: "citizen-auth", TBSHash: [32]byte{1}, KeyHash: [32]byte{1}, RequestedBy: "x", NotAfter: time.Now().Add(time.Hour), Created: time.Now()}
				if err := certs.InsertIntent(ctx, in); err != nil {
					t.Fatal(err)
				}
				in.KeyHash = [32]byte{2}
				if err := certs.InsertIntent(ctx, in); !errors.Is(err, ca.ErrDuplicateSerial) {
					t.Fatalf("same serial: %v", err)
				}
				// An intent never signed is not a certificate.
				if _, err := certs.GetCertificate(ctx, "7e01"); !errors.Is(err, ca.ErrNotFound) {
					t.Fatalf("GetCertificate of an intent: %v", err)
				}
			})

			t.Run("CertificateMustMatchIntent", func(t *testing.T) {
				got, err := a.Issue(ctx, citizenRequest(t))
				if err != nil {
					t.Fatal(err)
				}
				rec := ca.CertificateRecord{Serial: got.Serial, CA: "citizen", Profile: policies.ProfileCitizenAuth, DER: got.Certificate.Raw,
					NotBefore: got.Certificate.NotBefore, NotAfter: got.Certificate.NotAfter}
				if err := certs.InsertCertificate(ctx, rec, nil); err == nil {
					t.Fatal("a certificate was stored twice over its intent")
				}
				// An intent whose pinned TBS differs refuses the certificate.
				in := ca.Intent{Serial: "7e02", CA: "citizen", Profile: "citizen-auth", TBSHash: [32]byte{9}, KeyHash: [32]byte{3}, RequestedBy: "x", NotAfter: time.Now().Add(time.Hour), Created: time.Now()}
				if err := certs.InsertIntent(ctx, in); err != nil {
					t.Fatal(err)
				}
				rec.Serial = "7e02"
				if err := certs.InsertCertificate(ctx, rec, nil); err == nil {
					t.Fatal("a certificate with another serial was stored")
				}
			})

			t.Run("StaleIntentReleasesKey", func(t *testing.T) {
				old := time.Now().Add(-time.Hour)
				in := ca.Intent{Serial: "7e03", CA: "citizen", Profile: "citizen-auth", TBSHash: [32]byte{4}, KeyHash: [32]byte{4}, RequestedBy: "x", NotAfter: time.Now().Add(time.Hour), Created: old}
				if err := certs.InsertIntent(ctx, in); err != nil {
					t.Fatal(err)
				}
				fresh := in
				fresh.Serial, fresh.Created = "7e04", time.Now()
				if err := certs.InsertIntent(ctx, fresh); err != nil {
					t.Fatalf("a key held by an abandoned intent stays blocked: %v", err)
				}
				again := fresh
				again.Serial = "7e05"
				if err := certs.InsertIntent(ctx, again); !errors.Is(err, ca.ErrDuplicateRequest) {
					t.Fatalf("a key held by a live intent: %v", err)
				}
			})

			t.Run("RacingIdenticalRequests", func(t *testing.T) {
				req := citizenRequest(t)
				const n = 8
				var wg sync.WaitGroup
				errs := make([]error, n)
				for i := range n {
					wg.Go(func() { _, errs[i] = a.Issue(ctx, req) })
				}
				wg.Wait()
				ok := 0
				for _, err := range errs {
					switch {
					case err == nil:
						ok++
					case !errors.Is(err, ca.ErrDuplicateRequest):
						t.Errorf("unexpected error: %v", err)
					}
				}
				if ok != 1 {
					t.Fatalf("%d of %d identical concurrent requests issued, want exactly 1", ok, n)
				}
			})

			t.Run("SerialsUnique", func(t *testing.T) {
				n, err := db.QueryInt64(ctx, "SELECT COUNT(*) FROM certificates WHERE state = 'issued'")
				if err != nil || n < 3 {
					t.Fatalf("issued rows = %d, %v", n, err)
				}
			})
		})
	}
}

// Keep the store's type assertion visible to readers of the tests.
var _ ca.Store = (*store.Certificates)(nil)

// TestConcurrentIssuance issues from many goroutines at once: on SQLite
// their certificate updates are group-committed; each must end issued.
func TestConcurrentIssuance(t *testing.T) {
	for _, d := range storetest.Dialects() {
		t.Run(d.Name, func(t *testing.T) {
			ctx := ctxT(t)
			db := storetest.Open(t, d.NewConfig(t))
			certs := db.Certificates(nil)
			a := newAuthority(t, certs)
			const n = 24
			reqs := make([]ca.Request, n)
			for i := range reqs {
				reqs[i] = citizenRequest(t)
			}
			serials := make([]string, n)
			var wg sync.WaitGroup
			errs := make(chan error, n)
			for i := range reqs {
				wg.Go(func() {
					got, err := a.Issue(ctx, reqs[i])
					if err != nil {
						errs <- err
						return
					}
					serials[i] = got.Serial
				})
			}
			wg.Wait()
			close(errs)
			for err := range errs {
				t.Fatal(err)
			}
			for _, s := range serials {
				if rec, err := certs.GetCertificate(ctx, s); err != nil || len(rec.DER) == 0 {
					t.Fatalf("certificate %s: %v", s, err)
				}
			}
			if c, err := db.QueryInt64(ctx, "SELECT COUNT(*) FROM certificates WHERE state = 'issued'"); err != nil || c != n {
				t.Fatalf("%d issued, %v; want %d", c, err, n)
			}
		})
	}
}

// TestIssueBatchIsolatesAFailure: when one update of a batch fails, the
// batch is committed update by update and only that one fails.
func TestIssueBatchIsolatesAFailure(t *testing.T) {
	ctx := ctxT(t)
	db := storetest.Open(t, storetest.Dialects()[0].NewConfig(t))
	certs := db.Certificates(nil)
	var updates [][]any
	for i, serial := range []string{"7f01", "7f02", "7f03"} {
		in := ca.Intent{Serial: serial, CA: "citizen", Profile: "citizen-auth", TBSHash: [32]byte{byte(i + 1)}, KeyHash: [32]byte{byte(i + 1)},
			RequestedBy: "x", NotAfter: time.Now().Add(time.Hour), Created: time.Now()}
		if err := certs.InsertIntent(ctx, in); err != nil {
			t.Fatal(err)
		}
		var der any = []byte{0x30, 0}
		if i == 1 {
			der = make(chan int) // no SQL value: this update fails
		}
		updates = append(updates, []any{der, "CN=x", time.Now().Unix(), in.NotAfter.Unix(), nil, 0, time.Now().UnixNano(), "",
			serial, in.TBSHash[:], "citizen", "citizen-auth"})
	}
	prepared, ns, errs := certs.IssueBatch(ctx, updates)
	if !prepared {
		t.Fatalf("SQLite statements not prepared: %v", errs)
	}
	if errs[0] != nil || ns[0] != 1 || errs[2] != nil || ns[2] != 1 {
		t.Fatalf("good updates: n %v, errs %v", ns, errs)
	}
	if errs[1] == nil {
		t.Fatal("the bad update did not fail")
	}
	if c, err := db.QueryInt64(ctx, "SELECT COUNT(*) FROM certificates WHERE state = 'issued'"); err != nil || c != 2 {
		t.Fatalf("%d issued, %v; want 2", c, err)
	}
	// A batch of good updates commits together.
	in := ca.Intent{Serial: "7f04", CA: "citizen", Profile: "citizen-auth", TBSHash: [32]byte{9}, KeyHash: [32]byte{9}, RequestedBy: "x", NotAfter: time.Now().Add(time.Hour), Created: time.Now()}
	if err := certs.InsertIntent(ctx, in); err != nil {
		t.Fatal(err)
	}
	updates[1][0], updates[1][8], updates[1][9] = []byte{0x30, 0}, "7f04", in.TBSHash[:]
	if _, ns, errs := certs.IssueBatch(ctx, [][]any{updates[1], updates[0]}); errs[0] != nil || errs[1] != nil || ns[0] != 1 || ns[1] != 0 {
		t.Fatalf("second batch: n %v, errs %v (the already issued 7f01 changes nothing)", ns, errs)
	}
}

// TestIntentBatchKeepsOthersOnConflict: an intent that violates a unique
// constraint fails alone; the batch's other intents are committed.
func TestIntentBatchKeepsOthersOnConflict(t *testing.T) {
	ctx := ctxT(t)
	db := storetest.Open(t, storetest.Dialects()[0].NewConfig(t))
	certs := db.Certificates(nil)
	na := time.Now().Add(time.Hour).Unix()
	row := func(serial string, key byte) []any {
		return []any{serial, "citizen", "citizen-auth", []byte{key}, []byte{key}, nil, "x", na, time.Now().UnixNano(), "CN=x", nil, nil, nil, []byte{key}, "CN=x"}
	}
	errs, err := certs.IntentBatch(ctx, [][]any{row("7e11", 1), row("7e11", 2), row("7e12", 1), row("7e13", 3)})
	if err != nil {
		t.Fatal(err)
	}
	if errs[0] != nil || errs[3] != nil {
		t.Fatalf("good intents failed: %v", errs)
	}
	if errs[1] == nil || !strings.Contains(errs[1].Error(), "certificates.serial") {
		t.Fatalf("duplicate serial: %v", errs[1])
	}
	if errs[2] == nil || !strings.Contains(errs[2].Error(), "certificates.key_hash") {
		t.Fatalf("duplicate key: %v", errs[2])
	}
	if c, err := db.QueryInt64(ctx, "SELECT COUNT(*) FROM certificates WHERE state = 'intent'"); err != nil || c != 2 {
		t.Fatalf("%d intents, %v; want 2", c, err)
	}
}

// TestWriterSurvivesAPanic: a batch whose statement panics in the driver
// fails its caller with an error, and the next write is not left waiting
// for a leader that never handed over.
func TestWriterSurvivesAPanic(t *testing.T) {
	ctx := ctxT(t)
	db := storetest.Open(t, storetest.Dialects()[0].NewConfig(t))
	certs := db.Certificates(nil)
	if err := certs.WriteBroken(ctx); err == nil || !strings.Contains(err.Error(), "aborted") {
		t.Fatalf("broken statement: %v", err)
	}
	done := make(chan error, 1)
	go func() {
		done <- certs.InsertIntent(ctx, ca.Intent{Serial: "7f10", CA: "citizen", Profile: "citizen-auth", TBSHash: [32]byte{1}, KeyHash: [32]byte{1},
			RequestedBy: "x", NotAfter: time.Now().Add(time.Hour), Created: time.Now()})
	}()
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the write after a panicking batch is still waiting")
	}
}
