package store_test

import (
	"crypto/sha256"
	"testing"
	"time"

	"github.com/thiqa/thiqa/store"
	"github.com/thiqa/thiqa/store/storetest"
)

// TestMigrationBlocksKeysRevokedBeforeBlocking: a database that recorded a
// keyCompromise revocation before blocked_keys existed (as releases before
// migration 0009 did) has that key blocked once it is migrated, by its
// first keyCompromise revocation; other revocations block nothing, and a
// key blocked already keeps its block.
func TestMigrationBlocksKeysRevokedBeforeBlocking(t *testing.T) {
	for _, d := range storetest.Dialects() {
		t.Run(d.Name, func(t *testing.T) {
			ctx := ctxT(t)
			cfg := d.NewConfig(t)
			db := storetest.Open(t, cfg)
			compromised, superseded, blocked := sha256.Sum256([]byte("compromised")), sha256.Sum256([]byte("superseded")), sha256.Sum256([]byte("blocked"))
			first, second, sibling, other, kept := serialN(1), serialN(2), serialN(3), serialN(4), serialN(5)
			seedKeyCert(t, db, first, "citizen", "citizen-auth", "issued", compromised)
			seedKeyCert(t, db, second, "citizen", "citizen-signing", "issued", compromised)
			seedKeyCert(t, db, sibling, "organisation", "organisation-seal", "issued", compromised)
			seedKeyCert(t, db, other, "citizen", "citizen-signing", "issued", superseded)
			seedKeyCert(t, db, kept, "citizen", "citizen-auth", "issued", blocked)
			now := time.Now()
			revoke := func(serial string, reason int, by string, recorded time.Time) {
				t.Helper()
				if err := db.ExecTx(ctx, `INSERT INTO revocations (serial, ca, crl_partition, revoked_at, reason, revoked_by, recorded_at)
	VALUES (?, 'citizen', 0, ?, ?, ?, ?)`, serial, recorded.UnixNano(), reason, by, recorded.UnixNano()); err != nil {
					t.Fatal(err)
				}
			}
			// The state a release before 0009 left: revocations, no blocks.
			revoke(store.SerialKey(second), 1, "officer-2", now.Add(-time.Hour))
			revoke(store.SerialKey(first), 1, "officer-1", now.Add(-2*time.Hour))
			revoke(store.SerialKey(other), 4, "officer-3", now.Add(-time.Hour))
			revoke(store.SerialKey(kept), 1, "officer-4", now.Add(-time.Hour))
			if err := db.ExecTx(ctx, `INSERT INTO blocked_keys (key_hash, serial, blocked_by, blocked_at) VALUES (?, ?, 'officer-9', 7)`,
				blocked[:], store.SerialKey(kept)); err != nil {
				t.Fatal(err)
			}
			if err := db.ExecTx(ctx, `DELETE FROM schema_migrations WHERE version = '0015_block_keys_revoked_before_0009'`); err != nil {
				t.Fatal(err)
			}

			db = storetest.Open(t, cfg) // the upgrade: applies the migration again
			certs := db.Certificates(nil)
			b, err := certs.KeyBlocked(ctx, compromised)
			if err != nil || b == nil || b.Serial != store.SerialKey(first) || b.BlockedBy != "officer-1" {
				t.Fatalf("compromised key after the migration: %+v, %v; want blocked by %s's revocation", b, err, store.SerialKey(first))
			}
			if b, err := certs.KeyBlocked(ctx, superseded); err != nil || b != nil {
				t.Fatalf("a key revoked as superseded is blocked: %+v, %v", b, err)
			}
			if b, err := certs.KeyBlocked(ctx, blocked); err != nil || b == nil || b.BlockedBy != "officer-9" || b.BlockedAt.UnixNano() != 7 {
				t.Fatalf("a block made before the migration changed: %+v, %v", b, err)
			}
			// The first sweep of a server revokes the key's other certificate.
			cs, err := db.Revocations().SweepBlockedKeys(ctx, time.Unix(0, 0), time.Now(), nil)
			if err != nil || len(cs) != 1 || cs[0].Serial != store.SerialKey(sibling) || cs[0].Origin != store.SerialKey(first) {
				t.Fatalf("sweep after the migration: %+v, %v; want %s revoked", cs, err, store.SerialKey(sibling))
			}
		})
	}
}
