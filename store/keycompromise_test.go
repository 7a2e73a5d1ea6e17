package store_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"errors"
	"math/big"
	"testing"
	"time"

	"github.com/thiqa/thiqa/ca"
	"github.com/thiqa/thiqa/ca/crl"
	"github.com/thiqa/thiqa/ca/ocsp"
	"github.com/thiqa/thiqa/ca/revocation"
	"github.com/thiqa/thiqa/store"
	"github.com/thiqa/thiqa/store/storetest"
)

// seedKeyCert inserts a certificate row for a given key and profile, as
// the CA would leave it.
func seedKeyCert(t testing.TB, db *store.DB, serial *big.Int, issuer, profile, state string, key [32]byte) {
	t.Helper()
	err := db.ExecTx(context.Background(), `INSERT INTO certificates
	(serial, ca, profile, state, tbs_hash, key_hash, requested_by, not_after, crl_partition, created_at, der)
	VALUES (?, ?, ?, ?, ?, ?, 'test', ?, 0, ?, ?)`,
		store.SerialKey(serial), issuer, profile, state, key[:], key[:], time.Now().Add(time.Hour).Unix(), time.Now().UnixNano(), []byte{0x30, 0})
	if err != nil {
		t.Fatal(err)
	}
}

// selfSigned is a throwaway certificate with that serial.
func selfSigned(t testing.TB, serial *big.Int) []byte {
	t.Helper()
	k, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	tmpl := &x509.Certificate{SerialNumber: serial, NotBefore: time.Now(), NotAfter: time.Now().Add(time.Hour)}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, k.Public(), k)
	if err != nil {
		t.Fatal(err)
	}
	return der
}

// TestKeyCompromise: a keyCompromise revocation revokes every certificate
// with the key, across profiles and CAs, blocks the key (the status, the
// CA's look-up and the completion of a pending issuance see it) and leaves
// other keys alone; a certificate revoked before keeps its revocation.
func TestKeyCompromise(t *testing.T) {
	for _, d := range storetest.Dialects() {
		t.Run(d.Name, func(t *testing.T) {
			ctx := context.Background()
			db := storetest.Open(t, d.NewConfig(t))
			rs, certs := db.Revocations(), db.Certificates(nil)
			key, other := sha256.Sum256([]byte("compromised")), sha256.Sum256([]byte("other"))
			signing, auth, seal, unrelated, pending := serialN(1), serialN(2), serialN(3), serialN(4), serialN(5)
			seedKeyCert(t, db, signing, "citizen", "citizen-signing", "issued", key)
			seedKeyCert(t, db, auth, "citizen", "citizen-auth", "issued", key)
			seedKeyCert(t, db, seal, "organisation", "organisation-seal", "issued", key)
			seedKeyCert(t, db, unrelated, "citizen", "citizen-auth", "issued", other)
			seedKeyCert(t, db, pending, "tsa", "tsa-unit", "intent", key)

			kc, err := rs.CompromiseKey(ctx, store.SerialKey(signing), "officer-1", time.Now(), nil)
			if err != nil {
				t.Fatal(err)
			}
			if kc.AlreadyRevoked || kc.AlreadyBlocked || kc.KeyHash != key || kc.Revocation.Serial != store.SerialKey(signing) ||
				kc.Revocation.Reason != crl.ReasonKeyCompromise || len(kc.AlsoRevoked) != 2 {
				t.Fatalf("compromise: %+v", kc)
			}
			for _, c := range []struct {
				issuer string
				serial *big.Int
				want   ocsp.State
			}{{"citizen", signing, ocsp.Revoked}, {"citizen", auth, ocsp.Revoked}, {"organisation", seal, ocsp.Revoked}, {"citizen", unrelated, ocsp.Good}} {
				st, err := rs.Status(ctx, c.issuer, c.serial)
				if err != nil || st.State != c.want || (c.want == ocsp.Revoked && st.Reason != crl.ReasonKeyCompromise) {
					t.Fatalf("status of %x: %+v %v", c.serial, st, err)
				}
			}
			// The CA's look-up and the status records.
			b, err := certs.KeyBlocked(ctx, key)
			if err != nil || b == nil || b.Serial != store.SerialKey(signing) || b.BlockedBy != "officer-1" {
				t.Fatalf("KeyBlocked: %+v %v", b, err)
			}
			if b, err := certs.KeyBlocked(ctx, other); err != nil || b != nil {
				t.Fatalf("unrelated key blocked: %+v %v", b, err)
			}
			rec, err := certs.GetCertificate(ctx, store.SerialKey(auth))
			if err != nil || !rec.KeyBlocked || !rec.Revoked {
				t.Fatalf("auth certificate record: %+v %v", rec, err)
			}
			if rec, _ := certs.GetCertificate(ctx, store.SerialKey(unrelated)); rec.KeyBlocked {
				t.Fatal("unrelated certificate reported blocked")
			}
			// The pending issuance of the key was abandoned: its certificate is never stored.
			err = certs.InsertCertificate(ctx, ca.CertificateRecord{Serial: store.SerialKey(pending), CA: "tsa", Profile: "tsa-unit", DER: selfSigned(t, pending)}, nil)
			if !errors.Is(err, ca.ErrKeyBlocked) {
				t.Fatalf("a certificate for a blocked key: %v", err)
			}
			// Each consequential revocation reaches the other instances' pollers.
			recent, err := rs.RecordedSince(ctx, time.Now().Add(-time.Minute), 10)
			if err != nil || len(recent) != 3 {
				t.Fatalf("recorded since: %d %v", len(recent), err)
			}

			// Again: nothing left to do, nothing changed.
			if _, err := rs.CompromiseKey(ctx, store.SerialKey(auth), "officer-2", time.Now(), nil); !errors.Is(err, revocation.ErrAlreadyRevoked) {
				t.Fatalf("second compromise: %v", err)
			}
			if _, err := rs.Revoke(ctx, store.SerialKey(auth), crl.ReasonKeyCompromise, "officer-2", time.Now(), nil); !errors.Is(err, revocation.ErrAlreadyRevoked) {
				t.Fatalf("Revoke(keyCompromise) of a revoked certificate: %v", err)
			}
			if _, err := rs.CompromiseKey(ctx, store.SerialKey(serialN(99)), "officer-2", time.Now(), nil); !errors.Is(err, revocation.ErrNotFound) {
				t.Fatalf("unknown serial: %v", err)
			}

			// Revoked before for another reason: the revocation stands, the key is blocked anyway.
			k2 := sha256.Sum256([]byte("superseded first"))
			old, sibling := serialN(10), serialN(11)
			seedKeyCert(t, db, old, "citizen", "citizen-signing", "issued", k2)
			seedKeyCert(t, db, sibling, "citizen", "citizen-auth", "issued", k2)
			if _, err := rs.Revoke(ctx, store.SerialKey(old), crl.ReasonSuperseded, "officer-1", time.Now(), nil); err != nil {
				t.Fatal(err)
			}
			// Revoke refuses it (nothing changes)…
			if _, err := rs.Revoke(ctx, store.SerialKey(old), crl.ReasonKeyCompromise, "officer-1", time.Now(), nil); !errors.Is(err, revocation.ErrAlreadyRevoked) {
				t.Fatalf("Revoke(keyCompromise) after superseded: %v", err)
			}
			if b, _ := certs.KeyBlocked(ctx, k2); b != nil {
				t.Fatal("a refused Revoke blocked the key")
			}
			// …CompromiseKey blocks the key and revokes the sibling.
			kc, err = rs.CompromiseKey(ctx, store.SerialKey(old), "officer-1", time.Now(), nil)
			if err != nil || !kc.AlreadyRevoked || kc.Revocation.Reason != crl.ReasonSuperseded || len(kc.AlsoRevoked) != 1 ||
				kc.AlsoRevoked[0].Serial != store.SerialKey(sibling) {
				t.Fatalf("compromise after superseded: %+v %v", kc, err)
			}
			if st, _ := rs.Status(ctx, "citizen", old); st.Reason != crl.ReasonSuperseded {
				t.Fatalf("the earlier revocation changed: %+v", st)
			}
		})
	}
}

// TestSweepBlockedKeys: a certificate completed while its key was being
// blocked (PostgreSQL's read committed lets an issuance that started before
// the block commit) is found and revoked by the sweep, once.
func TestSweepBlockedKeys(t *testing.T) {
	for _, d := range storetest.Dialects() {
		t.Run(d.Name, func(t *testing.T) {
			ctx := context.Background()
			db := storetest.Open(t, d.NewConfig(t))
			rs := db.Revocations()
			key := sha256.Sum256([]byte("raced"))
			origin, late := serialN(1), serialN(2)
			seedKeyCert(t, db, origin, "citizen", "citizen-signing", "issued", key)
			if _, err := rs.Revoke(ctx, store.SerialKey(origin), crl.ReasonKeyCompromise, "officer-1", time.Now(), nil); err != nil {
				t.Fatal(err)
			}
			// What the race leaves: an issued certificate of the blocked key, not revoked.
			seedKeyCert(t, db, late, "citizen", "citizen-auth", "issued", key)
			if cs, err := rs.SweepBlockedKeys(ctx, time.Now().Add(time.Hour), time.Now(), nil); err != nil || len(cs) != 0 {
				t.Fatalf("sweep of a window without blocks: %v %v", cs, err)
			}
			cs, err := rs.SweepBlockedKeys(ctx, time.Now().Add(-time.Minute), time.Now(), nil)
			if err != nil || len(cs) != 1 || cs[0].Serial != store.SerialKey(late) || cs[0].Origin != store.SerialKey(origin) ||
				cs[0].KeyHash != key || cs[0].RevokedBy != "officer-1" || cs[0].Reason != crl.ReasonKeyCompromise {
				t.Fatalf("sweep: %+v %v", cs, err)
			}
			if cs, err := rs.SweepBlockedKeys(ctx, time.Unix(0, 0), time.Now(), nil); err != nil || len(cs) != 0 {
				t.Fatalf("second sweep: %+v %v", cs, err)
			}
		})
	}
}
