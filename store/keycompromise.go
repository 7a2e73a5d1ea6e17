package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/thiqa/thiqa/ca"
	"github.com/thiqa/thiqa/ca/crl"
	"github.com/thiqa/thiqa/ca/revocation"
)

// Key compromise (table blocked_keys, migration 0009): a keyCompromise
// revocation blocks the certificate's key and revokes every certificate
// with it; the CA refuses the key for good.

// KeyBlocked returns the block of a key (SPKI SHA-256) reported compromised,
// or nil when it is not blocked (ca.Store).
func (c *Certificates) KeyBlocked(ctx context.Context, keyHash [32]byte) (*ca.KeyBlock, error) {
	var b ca.KeyBlock
	var at int64
	err := c.db.queryRow(ctx, `SELECT serial, blocked_by, blocked_at FROM blocked_keys WHERE key_hash = ?`, keyHash[:]).
		Scan(&b.Serial, &b.BlockedBy, &at)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, nil
	}
	if err != nil {
		return nil, mapErr("store: looking up a blocked key", err)
	}
	b.BlockedAt = time.Unix(0, at).UTC()
	return &b, nil
}

// keyBlockedError says why InsertCertificate changed nothing when the
// certificate's key is blocked (nil otherwise).
func (c *Certificates) keyBlockedError(ctx context.Context, serial string) error {
	var origin string
	err := c.db.queryRow(ctx, `SELECT b.serial FROM certificates c JOIN blocked_keys b ON b.key_hash = c.key_hash WHERE c.serial = ?`, serial).Scan(&origin)
	if err != nil {
		return nil
	}
	return fmt.Errorf("store: certificate %s: %w (certificate %s was revoked for keyCompromise)", serial, ca.ErrKeyBlocked, origin)
}

// CompromiseKey revokes a certificate for keyCompromise (unless it is
// revoked already), blocks its key and revokes every other issued
// certificate with that key, of any profile and CA, in one transaction
// (revocation.Store). It then looks once more, in a second transaction,
// for certificates with the key that an issuance completed while the first
// ran (on PostgreSQL an issuance that started before the block committed
// does not see it); should that look fail, the revocation and block stand,
// the error is returned with them, and servers' sweeps find the rest.
//
// Each transaction seals the audit records rec gives for what it commits
// (revocation.Change: Compromise for the first, Consequences for the
// second) into the chain before it commits; an error from rec or the
// append rolls that transaction back.
func (r *Revocations) CompromiseKey(ctx context.Context, serial, by string, now time.Time, rec revocation.Records) (*revocation.CompromisedKey, error) {
	return r.compromise(ctx, serial, by, now, false, rec)
}

// compromise is CompromiseKey; onlyNew refuses (ErrAlreadyRevoked, nothing
// changed) a certificate revoked before, as Revoke does.
func (r *Revocations) compromise(ctx context.Context, serial, by string, now time.Time, onlyNew bool, rec revocation.Records) (*revocation.CompromisedKey, error) {
	key, err := revocation.NormalizeSerial(serial)
	if err != nil {
		return nil, fmt.Errorf("store: revoking: %w: %w: %v", revocation.ErrNotFound, ErrNotFound, err)
	}
	if by == "" {
		return nil, errors.New("store: revoking: the revoking party is required")
	}
	var out *revocation.CompromisedKey
	err = r.db.auditedTx(ctx, func(t *txn, records *auditInTx) error {
		out = nil
		var caName, state string
		var part int
		var keyHash []byte
		err := t.queryRow(ctx, `SELECT ca, state, crl_partition, key_hash FROM certificates WHERE serial = ?`, key).Scan(&caName, &state, &part, &keyHash)
		if errors.Is(err, sql.ErrNoRows) || (err == nil && state != "issued") {
			return fmt.Errorf("store: revoking %s: %w: %w", key, revocation.ErrNotFound, ErrNotFound)
		}
		if err != nil {
			return mapErr("store: revoking "+key, err)
		}
		if len(keyHash) != 32 {
			return fmt.Errorf("store: certificate %s: key hash of %d bytes", key, len(keyHash))
		}
		kc := &revocation.CompromisedKey{}
		copy(kc.KeyHash[:], keyHash)
		prior, err := scanRevocation(t.queryRow(ctx, `SELECT `+revocationColumns+` FROM revocations WHERE serial = ?`, key))
		switch {
		case err == nil:
			if onlyNew {
				return fmt.Errorf("store: revoking %s: %w: %w", key, revocation.ErrAlreadyRevoked, ErrConflict)
			}
			kc.Revocation, kc.AlreadyRevoked = *prior, true
		case !errors.Is(err, sql.ErrNoRows):
			return mapErr("store: revoking "+key, err)
		}
		var origin string
		switch err := t.queryRow(ctx, `SELECT serial FROM blocked_keys WHERE key_hash = ?`, keyHash).Scan(&origin); {
		case err == nil:
			kc.AlreadyBlocked = true
		case !errors.Is(err, sql.ErrNoRows):
			return mapErr("store: revoking "+key, err)
		}
		at, recorded := now.UTC().Truncate(time.Second), time.Now().UTC()
		if !kc.AlreadyRevoked {
			kc.Revocation = revocation.Revocation{Serial: key, CA: caName, Partition: part, RevokedAt: at,
				Reason: crl.ReasonKeyCompromise, RevokedBy: by, Recorded: recorded}
			if _, err := t.exec(ctx, `INSERT INTO revocations (serial, ca, crl_partition, revoked_at, reason, revoked_by, recorded_at)
	VALUES (?, ?, ?, ?, ?, ?, ?)`, key, caName, part, at.UnixNano(), crl.ReasonKeyCompromise, by, recorded.UnixNano()); err != nil {
				return mapErr("store: revoking "+key, err)
			}
		}
		if !kc.AlreadyBlocked {
			if _, err := t.exec(ctx, `INSERT INTO blocked_keys (key_hash, serial, blocked_by, blocked_at) VALUES (?, ?, ?, ?)`,
				keyHash, key, by, recorded.UnixNano()); err != nil {
				return mapErr("store: blocking the key of "+key, err)
			}
		}
		if kc.AlsoRevoked, err = revokeKeyHolders(ctx, t, keyHash, by, at, recorded); err != nil {
			return err
		}
		if kc.AlreadyRevoked && kc.AlreadyBlocked && len(kc.AlsoRevoked) == 0 {
			return fmt.Errorf("store: revoking %s: %w (and its key is blocked): %w", key, revocation.ErrAlreadyRevoked, ErrConflict)
		}
		if err := records.appendAudit(ctx, t, sealer(rec, revocation.Change{Compromise: kc})); err != nil {
			return fmt.Errorf("store: recording the key compromise of %s in the audit log: %w", key, err)
		}
		out = kc
		return nil
	})
	if err != nil {
		return nil, err
	}
	var late []revocation.Revocation
	err = r.db.auditedTx(ctx, func(t *txn, records *auditInTx) error {
		var err error
		late, err = revokeKeyHolders(ctx, t, out.KeyHash[:], by, now.UTC().Truncate(time.Second), time.Now().UTC())
		if err != nil || len(late) == 0 {
			return err
		}
		cs := make([]revocation.Consequence, len(late))
		for i, rv := range late {
			cs[i] = revocation.Consequence{Revocation: rv, Origin: key, KeyHash: out.KeyHash}
		}
		if err := records.appendAudit(ctx, t, sealer(rec, revocation.Change{Consequences: cs})); err != nil {
			return fmt.Errorf("store: recording the consequences of the key compromise of %s in the audit log: %w", key, err)
		}
		return nil
	})
	if err != nil {
		late = nil // rolled back with its records
	}
	out.AlsoRevoked = append(out.AlsoRevoked, late...)
	if err != nil {
		return out, fmt.Errorf("store: looking again for certificates with the blocked key of %s: %w", key, err)
	}
	return out, nil
}

// revokeKeyHolders revokes, for keyCompromise, every issued certificate
// with that key not revoked yet, and abandons the pending intents of the
// key (their certificates must never be stored). A certificate another
// process revokes meanwhile is skipped.
func revokeKeyHolders(ctx context.Context, t *txn, keyHash []byte, by string, at, recorded time.Time) ([]revocation.Revocation, error) {
	if _, err := t.exec(ctx, `UPDATE certificates SET state = 'abandoned' WHERE key_hash = ? AND state = 'intent'`, keyHash); err != nil {
		return nil, mapErr("store: abandoning the intents of a blocked key", err)
	}
	rows, err := t.query(ctx, `SELECT c.serial, c.ca, c.crl_partition FROM certificates c
	LEFT JOIN revocations r ON r.serial = c.serial
	WHERE c.key_hash = ? AND c.state = 'issued' AND r.serial IS NULL ORDER BY c.serial`, keyHash)
	if err != nil {
		return nil, mapErr("store: certificates of a blocked key", err)
	}
	var found []revocation.Revocation
	for rows.Next() {
		rv := revocation.Revocation{RevokedAt: at, Reason: crl.ReasonKeyCompromise, RevokedBy: by, Recorded: recorded}
		if err := rows.Scan(&rv.Serial, &rv.CA, &rv.Partition); err != nil {
			rows.Close()
			return nil, mapErr("store: certificates of a blocked key", err)
		}
		found = append(found, rv)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, mapErr("store: certificates of a blocked key", err)
	}
	var out []revocation.Revocation
	for _, rv := range found {
		res, err := t.exec(ctx, `INSERT INTO revocations (serial, ca, crl_partition, revoked_at, reason, revoked_by, recorded_at)
	VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT (serial) DO NOTHING`, rv.Serial, rv.CA, rv.Partition, at.UnixNano(), rv.Reason, by, recorded.UnixNano())
		if err != nil {
			return nil, mapErr("store: revoking "+rv.Serial, err)
		}
		if n, err := res.RowsAffected(); err != nil {
			return nil, mapErr("store: revoking "+rv.Serial, err)
		} else if n == 1 {
			out = append(out, rv)
		}
	}
	return out, nil
}

// SweepBlockedKeys revokes, for keyCompromise, the issued certificates not
// yet revoked whose key was blocked at or after since, and returns them
// (revocation.Store). It reads first and writes only when there is
// something to revoke.
//
// The audit records rec gives for them are sealed into the chain in the
// same transaction; an error from rec or the append rolls it back.
func (r *Revocations) SweepBlockedKeys(ctx context.Context, since, now time.Time, rec revocation.Records) ([]revocation.Consequence, error) {
	type block struct {
		keyHash    []byte
		origin, by string
	}
	rows, err := r.db.query(ctx, `SELECT DISTINCT b.key_hash, b.serial, b.blocked_by FROM blocked_keys b
	JOIN certificates c ON c.key_hash = b.key_hash
	LEFT JOIN revocations r ON r.serial = c.serial
	WHERE b.blocked_at >= ? AND c.state = 'issued' AND r.serial IS NULL`, since.UnixNano())
	if err != nil {
		return nil, mapErr("store: sweeping blocked keys", err)
	}
	var blocks []block
	for rows.Next() {
		var b block
		if err := rows.Scan(&b.keyHash, &b.origin, &b.by); err != nil {
			rows.Close()
			return nil, mapErr("store: sweeping blocked keys", err)
		}
		blocks = append(blocks, b)
	}
	rows.Close()
	if err := rows.Err(); err != nil || len(blocks) == 0 {
		return nil, mapErr("store: sweeping blocked keys", err)
	}
	var out []revocation.Consequence
	err = r.db.auditedTx(ctx, func(t *txn, records *auditInTx) error {
		out = out[:0]
		at, recorded := now.UTC().Truncate(time.Second), time.Now().UTC()
		for _, b := range blocks {
			revs, err := revokeKeyHolders(ctx, t, b.keyHash, b.by, at, recorded)
			if err != nil {
				return err
			}
			for _, rv := range revs {
				c := revocation.Consequence{Revocation: rv, Origin: b.origin}
				copy(c.KeyHash[:], b.keyHash)
				out = append(out, c)
			}
		}
		if len(out) == 0 {
			return nil
		}
		if err := records.appendAudit(ctx, t, sealer(rec, revocation.Change{Consequences: out})); err != nil {
			return fmt.Errorf("store: recording swept revocations in the audit log: %w", err)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}
