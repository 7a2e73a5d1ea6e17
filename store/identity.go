package store

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/thiqa/thiqa/identity"
	"github.com/thiqa/thiqa/internal/audit"
	"github.com/thiqa/thiqa/internal/pin"
)

// Identity is the OpenID Connect provider's state (identity.Store): clients,
// remote logins, grants and used client-assertion IDs; and the mobile ID
// enrolments with their login PINs (pin.Store).
type Identity struct{ db *DB }

// Identity returns the identity provider's store.
func (db *DB) Identity() *Identity { return &Identity{db: db} }

var (
	_ identity.Store = (*Identity)(nil)
	_ pin.Store      = (*Identity)(nil)
)

// idErr maps the store's sentinels onto package identity's.
func idErr(what string, err error) error {
	err = mapErr(what, err)
	switch {
	case errors.Is(err, ErrNotFound):
		return fmt.Errorf("%w: %w", identity.ErrNotFound, err)
	case errors.Is(err, ErrConflict):
		return fmt.Errorf("%w: %w", identity.ErrConflict, err)
	}
	return err
}

func boolInt(b bool) int {
	if b {
		return 1
	}
	return 0
}

func nanos(t time.Time) any {
	if t.IsZero() {
		return nil
	}
	return t.UnixNano()
}

func fromNanos(n sql.NullInt64) time.Time {
	if !n.Valid {
		return time.Time{}
	}
	return time.Unix(0, n.Int64).UTC()
}

// AddClient registers a client; a taken ID is identity.ErrConflict.
func (s *Identity) AddClient(ctx context.Context, c *identity.Client) error {
	uris, err := json.Marshal(c.RedirectURIs)
	if err != nil {
		return err
	}
	return s.db.writeTx(ctx, func(t *txn) error {
		_, err := t.exec(ctx, `INSERT INTO oidc_clients (id, name, redirect_uris, allow_civil_number, sector_identifier, auth_method, jwks, tls_subject, created_at)
	VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)`, c.ID, c.Name, string(uris), boolInt(c.AllowCivilNumber), c.SectorIdentifier, c.AuthMethod,
			nullString(string(c.JWKS)), nullString(c.TLSSubject), c.Created.UnixNano())
		return idErr("store: adding client "+c.ID, err)
	})
}

const clientColumns = `id, name, redirect_uris, allow_civil_number, sector_identifier, auth_method, jwks, tls_subject, created_at`

func scanClient(sc interface{ Scan(...any) error }) (*identity.Client, error) {
	var c identity.Client
	var uris string
	var allow int
	var jwks, subj sql.NullString
	var created int64
	if err := sc.Scan(&c.ID, &c.Name, &uris, &allow, &c.SectorIdentifier, &c.AuthMethod, &jwks, &subj, &created); err != nil {
		return nil, err
	}
	if err := json.Unmarshal([]byte(uris), &c.RedirectURIs); err != nil {
		return nil, fmt.Errorf("store: client %s: redirect URIs: %w", c.ID, err)
	}
	c.AllowCivilNumber, c.TLSSubject, c.Created = allow == 1, subj.String, time.Unix(0, created).UTC()
	if jwks.Valid {
		c.JWKS = []byte(jwks.String)
	}
	return &c, nil
}

// Client implements identity.Store.
func (s *Identity) Client(ctx context.Context, id string) (*identity.Client, error) {
	c, err := scanClient(s.db.queryRow(ctx, `SELECT `+clientColumns+` FROM oidc_clients WHERE id = ?`, id))
	if err != nil {
		return nil, idErr("store: client "+id, err)
	}
	return c, nil
}

// Clients lists the registered clients by ID.
func (s *Identity) Clients(ctx context.Context) ([]*identity.Client, error) {
	rows, err := s.db.query(ctx, `SELECT `+clientColumns+` FROM oidc_clients ORDER BY id`)
	if err != nil {
		return nil, idErr("store: listing clients", err)
	}
	defer rows.Close()
	var out []*identity.Client
	for rows.Next() {
		c, err := scanClient(rows)
		if err != nil {
			return nil, idErr("store: listing clients", err)
		}
		out = append(out, c)
	}
	return out, idErr("store: listing clients", rows.Err())
}

// CreateLogin implements identity.Store.
func (s *Identity) CreateLogin(ctx context.Context, l *identity.Login) error {
	req, err := json.Marshal(l.Request)
	if err != nil {
		return err
	}
	return s.db.writeTx(ctx, func(t *txn) error {
		_, err := t.exec(ctx, `INSERT INTO oidc_logins (id, browser_key_hash, request, civil_number, client_key, verification_code, state, created_at, expires_at)
	VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)`, l.ID, l.BrowserKeyHash, string(req), l.CivilNumber, l.ClientKey, l.VerificationCode, string(l.State),
			l.Created.UnixNano(), l.Expires.UnixNano())
		return idErr("store: recording login", err)
	})
}

const loginColumns = `id, browser_key_hash, request, civil_number, client_key, verification_code, state, citizen, auth_time, reason, created_at, expires_at`

func scanLogin(sc interface{ Scan(...any) error }) (*identity.Login, error) {
	var l identity.Login
	var req, state string
	var citizen, reason sql.NullString
	var authTime sql.NullInt64
	var created, expires int64
	if err := sc.Scan(&l.ID, &l.BrowserKeyHash, &req, &l.CivilNumber, &l.ClientKey, &l.VerificationCode, &state, &citizen, &authTime, &reason, &created, &expires); err != nil {
		return nil, err
	}
	if err := json.Unmarshal([]byte(req), &l.Request); err != nil {
		return nil, fmt.Errorf("store: login %s: %w", l.ID, err)
	}
	if citizen.Valid {
		l.Citizen = &identity.Citizen{}
		if err := json.Unmarshal([]byte(citizen.String), l.Citizen); err != nil {
			return nil, fmt.Errorf("store: login %s: %w", l.ID, err)
		}
	}
	l.State, l.Reason, l.AuthTime = identity.LoginState(state), reason.String, fromNanos(authTime)
	l.Created, l.Expires = time.Unix(0, created).UTC(), time.Unix(0, expires).UTC()
	return &l, nil
}

// Login implements identity.Store.
func (s *Identity) Login(ctx context.Context, id string) (*identity.Login, error) {
	l, err := scanLogin(s.db.queryRow(ctx, `SELECT `+loginColumns+` FROM oidc_logins WHERE id = ?`, id))
	if err != nil {
		return nil, idErr("store: login", err)
	}
	return l, nil
}

// UpdateLogin implements identity.Store: one conditional UPDATE.
func (s *Identity) UpdateLogin(ctx context.Context, l *identity.Login, from identity.LoginState) error {
	var citizen any
	if l.Citizen != nil {
		b, err := json.Marshal(l.Citizen)
		if err != nil {
			return err
		}
		citizen = string(b)
	}
	return s.db.writeTx(ctx, func(t *txn) error {
		res, err := t.exec(ctx, `UPDATE oidc_logins SET state = ?, citizen = ?, auth_time = ?, reason = ? WHERE id = ? AND state = ?`,
			string(l.State), citizen, nanos(l.AuthTime), nullString(l.Reason), l.ID, string(from))
		if err != nil {
			return idErr("store: updating login", err)
		}
		if n, err := res.RowsAffected(); err != nil || n != 1 {
			return fmt.Errorf("store: login %s is no longer %s: %w", l.ID, from, identity.ErrConflict)
		}
		return nil
	})
}

// PendingLogins implements identity.Store: the newest first, so that
// the login the citizen just started is on the phone's list however many
// others await approval.
func (s *Identity) PendingLogins(ctx context.Context, civil string, now time.Time) ([]*identity.Login, error) {
	rows, err := s.db.query(ctx, `SELECT `+loginColumns+` FROM oidc_logins
	WHERE civil_number = ? AND state = 'pending' AND expires_at > ? ORDER BY created_at DESC, id LIMIT ?`, civil, now.UnixNano(), identity.MaxPendingListed)
	if err != nil {
		return nil, idErr("store: pending logins", err)
	}
	defer rows.Close()
	var out []*identity.Login
	for rows.Next() {
		l, err := scanLogin(rows)
		if err != nil {
			return nil, idErr("store: pending logins", err)
		}
		out = append(out, l)
	}
	return out, idErr("store: pending logins", rows.Err())
}

// CountPendingLogins implements identity.Store: one query over the
// citizen's pending logins (index oidc_logins_pending) and the client's
// block (oidc_login_blocks' key).
func (s *Identity) CountPendingLogins(ctx context.Context, civil, clientKey string, now time.Time) (identity.PendingCount, error) {
	var c identity.PendingCount
	var blocks int
	err := s.db.queryRow(ctx, `SELECT COUNT(*), COALESCE(SUM(CASE WHEN client_key = ? THEN 1 ELSE 0 END), 0),
	(SELECT COUNT(*) FROM oidc_login_blocks WHERE civil_number = ? AND client_key = ? AND blocked_until > ?) FROM oidc_logins
	WHERE civil_number = ? AND state = 'pending' AND expires_at > ?`, clientKey, civil, clientKey, now.UnixNano(), civil, now.UnixNano()).Scan(&c.Total, &c.FromClient, &blocks)
	if err != nil {
		return identity.PendingCount{}, idErr("store: counting pending logins", err)
	}
	c.Blocked = blocks > 0
	return c, nil
}

// BlockLoginStarts implements identity.Store: one row per citizen and
// client, in one transaction; Purge deletes them once past.
func (s *Identity) BlockLoginStarts(ctx context.Context, civil string, clientKeys []string, until time.Time) error {
	if len(clientKeys) == 0 {
		return nil
	}
	return s.db.writeTx(ctx, func(t *txn) error {
		for _, k := range clientKeys {
			if _, err := t.exec(ctx, `INSERT INTO oidc_login_blocks (civil_number, client_key, blocked_until) VALUES (?, ?, ?)
	ON CONFLICT (civil_number, client_key) DO UPDATE SET blocked_until = CASE
	WHEN excluded.blocked_until > oidc_login_blocks.blocked_until THEN excluded.blocked_until ELSE oidc_login_blocks.blocked_until END`,
				civil, k, until.UnixNano()); err != nil {
				return idErr("store: blocking login starts", err)
			}
		}
		return nil
	})
}

// CreateGrant implements identity.Store.
func (s *Identity) CreateGrant(ctx context.Context, g *identity.Grant) error {
	req, err := json.Marshal(g.Request)
	if err != nil {
		return err
	}
	citizen, err := json.Marshal(g.Citizen)
	if err != nil {
		return err
	}
	amr, err := json.Marshal(g.AMR)
	if err != nil {
		return err
	}
	return s.db.writeTx(ctx, func(t *txn) error {
		_, err := t.exec(ctx, `INSERT INTO oidc_grants (id, code_hash, request, citizen, method, acr, amr, auth_time, created_at, code_expires_at)
	VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`, g.ID, g.CodeHash, string(req), string(citizen), g.Method, g.ACR, string(amr),
			g.AuthTime.UnixNano(), g.Created.UnixNano(), g.CodeExpires.UnixNano())
		return idErr("store: recording grant", err)
	})
}

const grantColumns = `id, code_hash, request, citizen, method, acr, amr, auth_time, created_at, code_expires_at, redeemed_at, revoked_at, access_expires_at`

func scanGrant(sc interface{ Scan(...any) error }) (*identity.Grant, error) {
	var g identity.Grant
	var req, citizen, amr string
	var authTime, created, codeExp int64
	var redeemed, revoked, accessExp sql.NullInt64
	if err := sc.Scan(&g.ID, &g.CodeHash, &req, &citizen, &g.Method, &g.ACR, &amr, &authTime, &created, &codeExp, &redeemed, &revoked, &accessExp); err != nil {
		return nil, err
	}
	for _, f := range []struct {
		raw string
		v   any
	}{{req, &g.Request}, {citizen, &g.Citizen}, {amr, &g.AMR}} {
		if err := json.Unmarshal([]byte(f.raw), f.v); err != nil {
			return nil, fmt.Errorf("store: grant %s: %w", g.ID, err)
		}
	}
	g.AuthTime, g.Created, g.CodeExpires = time.Unix(0, authTime).UTC(), time.Unix(0, created).UTC(), time.Unix(0, codeExp).UTC()
	g.Redeemed, g.Revoked, g.AccessExpires = redeemed.Valid, revoked.Valid, fromNanos(accessExp)
	return &g, nil
}

// RedeemCode implements identity.Store: in one transaction it marks the
// code redeemed, or, for a code redeemed before (or by a concurrent
// request meanwhile), revokes its grant (which must be committed, so
// ErrCodeReused is returned after the transaction).
func (s *Identity) RedeemCode(ctx context.Context, codeHash []byte, now, accessExpires time.Time) (*identity.Grant, error) {
	var g *identity.Grant
	reused := false
	err := s.db.writeTx(ctx, func(t *txn) error {
		reused = false
		var err error
		g, err = scanGrant(t.queryRow(ctx, `SELECT `+grantColumns+` FROM oidc_grants WHERE code_hash = ?`, codeHash))
		if err != nil {
			return idErr("store: authorization code", err)
		}
		revoke := func() error {
			reused = true
			_, err := t.exec(ctx, `UPDATE oidc_grants SET revoked_at = ? WHERE id = ? AND revoked_at IS NULL`, now.UnixNano(), g.ID)
			return idErr("store: revoking grant", err)
		}
		if g.Redeemed {
			return revoke()
		}
		res, err := t.exec(ctx, `UPDATE oidc_grants SET redeemed_at = ?, access_expires_at = ? WHERE id = ? AND redeemed_at IS NULL`,
			now.UnixNano(), accessExpires.UnixNano(), g.ID)
		if err != nil {
			return idErr("store: redeeming code", err)
		}
		n, err := res.RowsAffected()
		if err != nil {
			return fmt.Errorf("store: grant %s: %w", g.ID, err)
		}
		if n != 1 {
			// Redeemed by a concurrent request since it was read
			// (PostgreSQL's read committed): the code was used twice.
			return revoke()
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	if reused {
		return g, identity.ErrCodeReused
	}
	return g, nil
}

// RevokeGrant implements identity.Store.
func (s *Identity) RevokeGrant(ctx context.Context, id string) error {
	return s.db.writeTx(ctx, func(t *txn) error {
		_, err := t.exec(ctx, `UPDATE oidc_grants SET revoked_at = ? WHERE id = ? AND revoked_at IS NULL`, time.Now().UnixNano(), id)
		return idErr("store: revoking grant", err)
	})
}

// Grant implements identity.Store.
func (s *Identity) Grant(ctx context.Context, id string) (*identity.Grant, error) {
	g, err := scanGrant(s.db.queryRow(ctx, `SELECT `+grantColumns+` FROM oidc_grants WHERE id = ?`, id))
	if err != nil {
		return nil, idErr("store: grant", err)
	}
	return g, nil
}

// UseAssertion implements identity.Store: the primary key (client, jti)
// makes a second use a conflict, reported as identity.ErrReplay.
func (s *Identity) UseAssertion(ctx context.Context, clientID, jti string, exp time.Time) error {
	err := s.db.writeTx(ctx, func(t *txn) error {
		_, err := t.exec(ctx, `INSERT INTO oidc_assertion_jtis (client_id, jti, expires_at) VALUES (?, ?, ?)`, clientID, jti, exp.UnixNano())
		return mapErr("store: recording client assertion", err)
	})
	if errors.Is(err, ErrConflict) {
		return fmt.Errorf("%w: %w", identity.ErrReplay, err)
	}
	return err
}

// Purge deletes expired assertion IDs, logins that ended more than an hour
// ago, blocks of login starts that are past, and grants whose tokens
// expired more than a day ago, in batches of a bounded number of rows (one
// short transaction each; see purgeBatches). It returns the rows deleted.
func (s *Identity) Purge(ctx context.Context, now time.Time) (int64, error) {
	var total int64
	for _, q := range []struct {
		table, key, where string
		arg               int64
	}{
		{"oidc_assertion_jtis", "client_id, jti", `expires_at < ?`, now.UnixNano()},
		{"oidc_logins", "id", `expires_at < ?`, now.Add(-time.Hour).UnixNano()},
		{"oidc_login_blocks", "civil_number, client_key", `blocked_until <= ?`, now.UnixNano()},
		{"oidc_grants", "id", `created_at < ?`, now.Add(-24 * time.Hour).UnixNano()},
	} {
		n, err := s.db.purgeBatches(ctx, q.table, q.key, q.where, q.arg)
		total += n
		if err != nil {
			return total, fmt.Errorf("store: purging identity state: %w", err)
		}
	}
	return total, nil
}

// EnrolMobileID records a citizen's remote authentication credential
// (mobile ID) without a PIN; pin.Manager.Set then sets the PIN once
// (CreatePIN). Enrolling a credential twice is identity.ErrConflict.
func (s *Identity) EnrolMobileID(ctx context.Context, credentialID, civilNumber string, now time.Time) error {
	return s.db.writeTx(ctx, func(t *txn) error {
		_, err := t.exec(ctx, `INSERT INTO oidc_mobile_ids (credential_id, civil_number, enrolled_at) VALUES (?, ?, ?)`,
			credentialID, civilNumber, now.UnixNano())
		return idErr("store: enrolling mobile ID "+credentialID, err)
	})
}

// MobileCredentialID returns the credential of the citizen's newest mobile
// ID enrolment with a PIN set, or identity.ErrNotFound.
func (s *Identity) MobileCredentialID(ctx context.Context, civilNumber string) (string, error) {
	var id string
	err := s.db.queryRow(ctx, `SELECT credential_id FROM oidc_mobile_ids
	WHERE civil_number = ? AND pin_hash IS NOT NULL ORDER BY enrolled_at DESC LIMIT 1`, civilNumber).Scan(&id)
	if err != nil {
		return "", idErr("store: mobile ID of a citizen", err)
	}
	return id, nil
}

// MobileCredentialIDs returns the credentials of the citizen's mobile ID
// enrolments with a PIN set, newest first, or identity.ErrNotFound when
// there is none.
func (s *Identity) MobileCredentialIDs(ctx context.Context, civilNumber string) ([]string, error) {
	const what = "store: mobile IDs of a citizen"
	rows, err := s.db.query(ctx, `SELECT credential_id FROM oidc_mobile_ids
	WHERE civil_number = ? AND pin_hash IS NOT NULL ORDER BY enrolled_at DESC, credential_id`, civilNumber)
	if err != nil {
		return nil, idErr(what, err)
	}
	defer rows.Close()
	var ids []string
	for rows.Next() {
		var id string
		if err := rows.Scan(&id); err != nil {
			return nil, idErr(what, err)
		}
		ids = append(ids, id)
	}
	if err := rows.Err(); err != nil {
		return nil, idErr(what, err)
	}
	if len(ids) == 0 {
		return nil, fmt.Errorf("%s: %w", what, identity.ErrNotFound)
	}
	return ids, nil
}

// CreatePIN implements pin.Store for enrolled mobile IDs (the login PIN).
func (s *Identity) CreatePIN(ctx context.Context, subject, hash string, seal audit.Sealer) (bool, error) {
	return s.pins().CreatePIN(ctx, subject, hash, seal)
}

// AttemptPIN implements pin.Store: the try is counted before the hash is checked.
func (s *Identity) AttemptPIN(ctx context.Context, subject string, limit int) (pin.State, bool, error) {
	return s.pins().AttemptPIN(ctx, subject, limit)
}

// LockPIN implements pin.Store: the record of a login PIN's lock.
func (s *Identity) LockPIN(ctx context.Context, subject, hash string, limit int, seal audit.Sealer) (bool, error) {
	return s.pins().LockPIN(ctx, subject, hash, limit, seal)
}

// ResetPINFailures implements pin.Store.
func (s *Identity) ResetPINFailures(ctx context.Context, subject string) error {
	return s.pins().ResetPINFailures(ctx, subject)
}

// pins keeps the login PINs of mobile IDs.
func (s *Identity) pins() pinRows {
	return newPinRows(s.db, "oidc_mobile_ids", "credential_id", "login PIN", false)
}
