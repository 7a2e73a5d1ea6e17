package identity

import (
	"context"
	"crypto"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/go-jose/go-jose/v4"

	"github.com/thiqa/thiqa/internal/audit"
	"github.com/thiqa/thiqa/internal/auth"
	"github.com/thiqa/thiqa/internal/josesigner"
	"github.com/thiqa/thiqa/internal/problem"
	"github.com/thiqa/thiqa/policies"
)

// PathClients is where operators register portals.
const PathClients = "/api/v1/oidc/clients"

// ActionAddClient is the audit action of a registered portal.
const ActionAddClient = "oidc.client.add"

// ClientRegistration is what an operator gives to register a portal (the
// JSON body of POST /api/v1/oidc/clients, and the flags of `thiqa oidc
// client add`).
type ClientRegistration struct {
	Name             string          `json:"name"`
	RedirectURIs     []string        `json:"redirectURIs"`
	AllowCivilNumber bool            `json:"allowCivilNumber,omitempty"`
	Sector           string          `json:"sector,omitempty"`
	JWKS             json.RawMessage `json:"jwks,omitempty"`
	TLSSubject       string          `json:"tlsSubject,omitempty"`
}

// RegistrationError is a client registration refused: what is wrong with
// it, in words for the operator.
type RegistrationError struct{ Reason string }

// Error returns the reason.
func (e *RegistrationError) Error() string { return e.Reason }

func refuseRegistration(format string, args ...any) error {
	return &RegistrationError{Reason: fmt.Sprintf(format, args...)}
}

// NewClient validates a registration and builds the client with a fresh
// ID. Every refusal is a *RegistrationError.
func NewClient(r ClientRegistration) (*Client, error) {
	if r.Name == "" || len(r.Name) > 200 || len(r.RedirectURIs) == 0 || len(r.RedirectURIs) > 20 || (len(r.JWKS) == 0) == (r.TLSSubject == "") {
		return nil, refuseRegistration("a name, 1 to 20 redirect URIs, and exactly one of a JWK set or a TLS subject are required")
	}
	for _, u := range r.RedirectURIs {
		if err := checkRedirectURI(u); err != nil {
			return nil, err
		}
	}
	if hosts := redirectHosts(r.RedirectURIs); r.Sector == "" && len(hosts) > 1 {
		// OpenID Connect Core section 8.1: the default sector is the host
		// of the first redirect URI, so a client with a URI on another
		// portal's host first would see that portal's pairwise subjects.
		return nil, refuseRegistration("redirect URIs on several hosts (%s) need a sector naming whose pairwise subjects the client shares", strings.Join(hosts, ", "))
	}
	c := &Client{Name: r.Name, RedirectURIs: r.RedirectURIs, AllowCivilNumber: r.AllowCivilNumber, SectorIdentifier: r.Sector, Created: time.Now().UTC()}
	if len(r.JWKS) > 0 {
		set, err := parseClientJWKS(r.JWKS)
		if err != nil {
			return nil, err
		}
		c.JWKS, c.AuthMethod = set, AuthPrivateKeyJWT
	} else {
		c.AuthMethod, c.TLSSubject = AuthTLSClient, r.TLSSubject
	}
	var b [12]byte
	if _, err := rand.Read(b[:]); err != nil {
		return nil, fmt.Errorf("choosing a client ID: %w", err)
	}
	c.ID = "oidc-" + hex.EncodeToString(b[:])
	return c, nil
}

// checkRedirectURI accepts absolute https URIs without fragment, and http
// only for loopback hosts (development portals).
func checkRedirectURI(raw string) error {
	u, err := url.Parse(raw)
	if err != nil || !u.IsAbs() || u.Host == "" || u.Fragment != "" || u.User != nil {
		return refuseRegistration("redirect URI %q: want an absolute URL without fragment or user info", raw)
	}
	switch {
	case u.Scheme == "https":
	case u.Scheme == "http" && (u.Hostname() == "localhost" || u.Hostname() == "127.0.0.1" || u.Hostname() == "::1"):
	default:
		return refuseRegistration("redirect URI %q: must be https (http only for loopback)", raw)
	}
	return nil
}

// redirectHosts lists the distinct hosts of valid redirect URIs in order;
// the loopback names count as one ("loopback"), a development portal's.
func redirectHosts(uris []string) []string {
	var out []string
	for _, raw := range uris {
		h := hostOf(raw)
		if h == "localhost" || h == "127.0.0.1" || h == "::1" {
			h = "loopback"
		}
		if !slices.Contains(out, h) {
			out = append(out, h)
		}
	}
	return out
}

// minRSABits is the least size of a client's RSA key (RFC 7518 section 3.3).
const minRSABits = 2048

// parseClientJWKS reads a client's public key set: at least one signing
// key, no private keys, no RSA key under 2048 bits.
func parseClientJWKS(raw []byte) ([]byte, error) {
	var set jose.JSONWebKeySet
	if err := json.Unmarshal(raw, &set); err != nil {
		return nil, refuseRegistration("JWK set: want a JWK set: %v", err)
	}
	if len(set.Keys) == 0 {
		return nil, refuseRegistration("JWK set: the key set is empty")
	}
	for i, k := range set.Keys {
		if !k.Valid() {
			return nil, refuseRegistration("JWK set: key %d is invalid", i)
		}
		if !k.IsPublic() {
			return nil, refuseRegistration("JWK set: key %d is a private key; register the public key only", i)
		}
		if k.Use != "" && k.Use != "sig" {
			return nil, refuseRegistration("JWK set: key %d has use %q, want sig", i, k.Use)
		}
		if rk, ok := k.Key.(*rsa.PublicKey); ok && rk.N.BitLen() < minRSABits {
			// RFC 7518 section 3.3: RS256 and PS256 keys have 2048 bits at least.
			return nil, refuseRegistration("JWK set: key %d is an RSA key of %d bits, want at least %d", i, rk.N.BitLen(), minRSABits)
		}
	}
	out, err := json.Marshal(set)
	if err != nil {
		return nil, fmt.Errorf("encoding the JWK set: %w", err)
	}
	return out, nil
}

// ClientStore keeps the registered portals (package store implements it).
type ClientStore interface {
	// AddClient registers a client; a taken ID is ErrConflict.
	AddClient(ctx context.Context, c *Client) error
}

// RegisterClient stores the client and records it in the audit log as
// registered by actor.
func RegisterClient(ctx context.Context, st ClientStore, log Auditor, c *Client, actor string) error {
	if err := st.AddClient(ctx, c); err != nil {
		return fmt.Errorf("storing client %s: %w", c.ID, err)
	}
	if _, err := log.Append(ctx, audit.Entry{Actor: actor, Action: ActionAddClient, Object: c.ID, Outcome: audit.OutcomeSuccess,
		Details: map[string]any{"name": c.Name, "redirectURIs": c.RedirectURIs, "allowCivilNumber": c.AllowCivilNumber, "authMethod": c.AuthMethod, "sector": c.SectorIdentifier}}); err != nil {
		return fmt.Errorf("writing audit record: %w", err)
	}
	return nil
}

// RegisterPortal registers the deployment's own citizen portal as a
// first-party client: the civil number as subject, private_key_jwt with
// key (its JWK named by its RFC 7638 thumbprint), redirect as its one
// redirect URI. The client ID derives from the key and redirect, so
// registering again is a no-op and a new redirect URI registers a new
// client. It returns the client ID and the signer of the client's
// assertions.
func RegisterPortal(ctx context.Context, st ClientStore, log Auditor, key crypto.Signer, redirect, actor string) (string, *josesigner.Signer, error) {
	kid, err := josesigner.KeyID(key.Public())
	if err != nil {
		return "", nil, err
	}
	js, err := josesigner.New(key, kid)
	if err != nil {
		return "", nil, err
	}
	set, err := json.Marshal(jose.JSONWebKeySet{Keys: []jose.JSONWebKey{*js.Public()}})
	if err != nil {
		return "", nil, err
	}
	c, err := NewClient(ClientRegistration{Name: "Thiqa portal", RedirectURIs: []string{redirect}, AllowCivilNumber: true, JWKS: set})
	if err != nil {
		return "", nil, err
	}
	sum := sha256.Sum256(append(set, redirect...))
	c.ID = "thiqa-portal-" + hex.EncodeToString(sum[:8])
	c.Created = time.Now().UTC()
	if err := RegisterClient(ctx, st, log, c, actor); err != nil && !errors.Is(err, ErrConflict) {
		return "", nil, err
	}
	return c.ID, js, nil
}

// Guard wraps a handler so that it serves only callers allowed action,
// answering (and auditing) every other request itself; cmd/thiqa passes
// (*auth.Authenticator).Require.
type Guard func(action policies.Action) func(http.Handler) http.Handler

// ClientAPI serves the administration of the registered portals.
type ClientAPI struct {
	Store ClientStore
	Audit Auditor
	// Logger receives server-side errors; discarded when nil.
	Logger *slog.Logger
}

// Register mounts POST /api/v1/oidc/clients on mux behind guard
// (policies.ActionManageClients).
func (api *ClientAPI) Register(mux Mux, guard Guard) {
	mux.Handle("POST "+PathClients, guard(policies.ActionManageClients)(http.HandlerFunc(api.addClient)))
}

// callerName names the authenticated caller for the audit log.
func callerName(r *http.Request) string {
	if pr, ok := auth.FromContext(r.Context()); ok && pr.Subject != "" {
		return pr.Subject
	}
	return "unknown"
}

// addClient registers a portal: a ClientRegistration in, 201 with
// {"client_id": …} out. A refusal is a 400 problem, audited with the
// caller.
func (api *ClientAPI) addClient(w http.ResponseWriter, r *http.Request) {
	log := api.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	refuse := func(title, detail string) {
		if _, err := api.Audit.Append(r.Context(), audit.Entry{Actor: callerName(r), Action: string(policies.ActionManageClients), Object: r.URL.Path,
			Outcome: audit.OutcomeRefused, Details: map[string]any{"status": http.StatusBadRequest, "reason": detail, "caller": auth.CallerOf(r.Context())}}); err != nil {
			log.ErrorContext(r.Context(), "audit append failed", "err", err)
			problem.Error(w, http.StatusInternalServerError, "the refusal could not be recorded in the audit log")
			return
		}
		problem.Write(w, problem.Details{Status: http.StatusBadRequest, Title: title, Detail: detail, Instance: r.URL.Path})
	}
	var in ClientRegistration
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, 64<<10))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&in); err != nil || dec.More() {
		refuse("Malformed request", "want one JSON client registration")
		return
	}
	c, err := NewClient(in)
	var bad *RegistrationError
	switch {
	case errors.As(err, &bad):
		refuse("Invalid client registration", bad.Reason)
		return
	case err != nil:
		log.ErrorContext(r.Context(), "registering client", "err", err)
		problem.Error(w, http.StatusServiceUnavailable, "temporarily unable to register the client")
		return
	}
	if err := RegisterClient(r.Context(), api.Store, api.Audit, c, callerName(r)); err != nil {
		log.ErrorContext(r.Context(), "registering client", "err", err)
		problem.Error(w, http.StatusServiceUnavailable, "temporarily unable to register the client")
		return
	}
	writeJSON(w, http.StatusCreated, map[string]string{"client_id": c.ID})
}

// WriteClientTable writes the registered portals as `thiqa oidc client
// list` shows them: one row each, in aligned columns.
func WriteClientTable(w io.Writer, cs []*Client) error {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "CLIENT_ID\tNAME\tAUTH\tCIVIL_NUMBER\tREDIRECT_URIS")
	for _, c := range cs {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%t\t%s\n", c.ID, c.Name, c.AuthMethod, c.AllowCivilNumber, strings.Join(c.RedirectURIs, " "))
	}
	return tw.Flush()
}
