// Package csc serves the citizens' signing credentials of package signing
// in the shape of the Cloud Signature Consortium API v2 (TS 119 432):
// POST /csc/v2/info, credentials/list, credentials/info,
// credentials/authorize (the PIN, for a SAD bound to exact hashes) and
// signatures/signHash. It owns the CSC wire types and error codes: errors
// are CSC error bodies (section 10), not Thiqa's RFC 9457 problems, the
// authentication layer's refusals included.
package csc

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/rand"
	"crypto/rsa"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"maps"
	"net/http"
	"slices"
	"sync"
	"time"

	"github.com/thiqa/thiqa/internal/audit"
	"github.com/thiqa/thiqa/internal/auth"
	"github.com/thiqa/thiqa/policies"
	"github.com/thiqa/thiqa/signing"
)

// API serves the CSC endpoints over a signing service.
type API struct {
	s *signing.Service
	// oauth2 is the base URI of the OAuth 2.0 authorization server ("" for
	// none): {oauth2}/oauth2/authorize and {oauth2}/oauth2/token.
	oauth2 string
}

// New returns the CSC API of the signing service s.
func New(s *signing.Service) *API { return &API{s: s} }

// WithOAuth2 makes info announce the OAuth 2.0 authorization server whose
// authorize and token endpoints are {baseURI}/oauth2/authorize and
// {baseURI}/oauth2/token (the digital-ID provider; CSC API v2 section 8.4),
// and returns a.
func (a *API) WithOAuth2(baseURI string) *API {
	a.oauth2 = baseURI
	return a
}

// Register mounts the CSC endpoints on mux: POST /csc/v2/info (public),
// and credentials/list, credentials/info, credentials/authorize and
// signatures/signHash behind guard(policies.ActionSign), whose refusals are
// rewritten into CSC error bodies.
func (a *API) Register(mux signing.Mux, guard signing.Guard) {
	sign := guard(policies.ActionSign)
	mux.Handle("POST /csc/v2/info", http.HandlerFunc(a.serviceInfo))
	mux.Handle("POST /csc/v2/credentials/list", cscErrors(sign(http.HandlerFunc(a.list))))
	mux.Handle("POST /csc/v2/credentials/info", cscErrors(sign(http.HandlerFunc(a.info))))
	mux.Handle("POST /csc/v2/credentials/authorize", cscErrors(sign(http.HandlerFunc(a.authorize))))
	mux.Handle("POST /csc/v2/signatures/signHash", cscErrors(sign(http.HandlerFunc(a.signHash))))
}

// signAlgo describes a signAlgo OID: the key family, the hash it names
// (0: any) and whether it is RSASSA-PSS.
type signAlgo struct {
	ec   bool
	hash crypto.Hash
	pss  bool
}

var signAlgos = map[string]signAlgo{
	"1.2.840.10045.2.1":     {ec: true},
	"1.2.840.10045.4.3.2":   {ec: true, hash: crypto.SHA256},
	"1.2.840.10045.4.3.3":   {ec: true, hash: crypto.SHA384},
	"1.2.840.10045.4.3.4":   {ec: true, hash: crypto.SHA512},
	"1.2.840.113549.1.1.1":  {},
	"1.2.840.113549.1.1.11": {hash: crypto.SHA256},
	"1.2.840.113549.1.1.12": {hash: crypto.SHA384},
	"1.2.840.113549.1.1.13": {hash: crypto.SHA512},
	"1.2.840.113549.1.1.10": {pss: true},
}

// AuthorizeRequest is the body of credentials/authorize (CSC API v2
// section 11.6).
type AuthorizeRequest struct {
	// CredentialID is one of the caller's credentials.
	CredentialID string `json:"credentialID"`
	// NumSignatures is the number of hashes to authorise.
	NumSignatures int `json:"numSignatures"`
	// Hashes are the base64 hashes the SAD will authorise, each once.
	Hashes []string `json:"hashes"`
	// HashAlgorithmOID names their algorithm (inferred from their length
	// when absent).
	HashAlgorithmOID string `json:"hashAlgorithmOID,omitempty"`
	// AuthData carries the authentication objects (CSC API v2 section
	// 11.6): {"id": "PIN", "value": "..."}.
	AuthData []AuthObject `json:"authData,omitempty"`
	// PIN is the CSC v1 way of sending the PIN, still accepted.
	PIN string `json:"PIN,omitempty"`
}

// AuthObject is one authentication object of credentials/authorize.
type AuthObject struct {
	// ID names the object ("PIN").
	ID string `json:"id"`
	// Value is what the user entered.
	Value string `json:"value"`
}

// pinOf returns the PIN sent in authData (id "PIN") or in the v1 PIN field.
func (req *AuthorizeRequest) pinOf() string {
	for _, a := range req.AuthData {
		if a.ID == "PIN" {
			return a.Value
		}
	}
	return req.PIN
}

// AuthorizeResponse answers credentials/authorize.
type AuthorizeResponse struct {
	// SAD authorises exactly the hashes of the request, once.
	SAD string `json:"SAD"`
	// ExpiresIn is the SAD's lifetime in seconds.
	ExpiresIn int `json:"expiresIn"`
}

// SignHashRequest is the body of signatures/signHash (CSC API v2 section
// 11.10).
type SignHashRequest struct {
	// CredentialID is one of the caller's credentials.
	CredentialID string `json:"credentialID"`
	// SAD is the value credentials/authorize returned; it is consumed.
	SAD string `json:"SAD"`
	// Hashes are base64 hashes the SAD authorised.
	Hashes []string `json:"hashes"`
	// HashAlgorithmOID names their algorithm.
	HashAlgorithmOID string `json:"hashAlgorithmOID,omitempty"`
	// SignAlgo is the signature algorithm OID (one of ServiceInfo's).
	SignAlgo string `json:"signAlgo"`
}

// SignHashResponse answers signatures/signHash.
type SignHashResponse struct {
	// Signatures are base64, in the order of the hashes.
	Signatures []string `json:"signatures"`
}

// ServiceInfo answers POST /csc/v2/info (public; CSC API v2 section 11.1,
// the fields are its members of the same names).
type ServiceInfo struct {
	Specs       string   `json:"specs"`
	Name        string   `json:"name"`
	Logo        string   `json:"logo"`
	Region      string   `json:"region"`
	Lang        string   `json:"lang"`
	Description string   `json:"description"`
	AuthType    []string `json:"authType"`
	// OAuth2 is the base URI of the OAuth 2.0 authorization server (with
	// authType oauth2code).
	OAuth2  string   `json:"oauth2,omitempty"`
	Methods []string `json:"methods"`
	// SignAlgorithms lists the signAlgo OIDs signatures/signHash accepts.
	SignAlgorithms SignAlgorithms `json:"signAlgorithms"`
}

// SignAlgorithms is the signAlgorithms object of info.
type SignAlgorithms struct {
	// Algos are the signAlgo OIDs, sorted.
	Algos []string `json:"algos"`
}

// fail answers a refusal or failure with a CSC error body (CSC API v2
// section 10) and audits it; the audit record and metrics are those of
// every signing refusal. When the record cannot be written, the answer is
// a server_error.
func (a *API) fail(w http.ResponseWriter, r *http.Request, action, credID string, err error, details map[string]any) {
	status, code, description, reason, outcome := classify(err)
	if status >= 500 {
		a.s.Logger().WarnContext(r.Context(), "CSC request failed", "action", action, "credential", credID, "err", err)
	}
	if details == nil {
		details = map[string]any{}
	}
	details["reason"] = reason
	details["caller"] = auth.CallerOf(r.Context())
	if aerr := a.s.Record(r.Context(), audit.Entry{Actor: signing.CitizenOf(r), Action: action, Object: credID, Outcome: outcome, Details: details}); aerr != nil && !errors.Is(err, signing.ErrAudit) {
		// No answer goes out without its record: an unrecorded refusal
		// is a failure of the service.
		status, code, description, _, outcome = classify(fmt.Errorf("%w: %w", signing.ErrAudit, aerr))
	}
	if action == signing.ActionSignHash {
		a.s.Observe("signhash", "raw", outcome, 0)
	}
	writeError(w, status, code, description)
}

// credential loads one of the caller's citizen-signing credentials for a
// CSC method: a missing credentialID and a credential that is unknown or not
// the caller's are the specification's invalid_request errors.
func (a *API) credential(r *http.Request, id string) (*signing.Credential, error) {
	if id == "" {
		return nil, invalid("Missing (or invalid type) string parameter credentialID", nil)
	}
	cred, err := a.s.Credential(r.Context(), id, signing.OwnerCitizen, signing.CitizenOf(r))
	if errors.Is(err, signing.ErrCertificateNotValid) || errors.Is(err, signing.ErrCertificateRevoked) {
		// An expired, not yet valid or revoked certificate (section 11.10:
		// "Signing certificate is expired", 400 invalid_request).
		return nil, invalid("The signing certificate is not valid", err)
	}
	return cred, err
}

// serviceInfo serves POST /csc/v2/info: what this remote signing service
// implements. Callers authenticate with a bearer token issued by the
// deployment's identity provider ("external" in CSC terms) and, when the
// digital ID serves it, with an access token of its OAuth 2.0
// authorization code flow ("oauth2code", at the base URI oauth2).
func (a *API) serviceInfo(w http.ResponseWriter, _ *http.Request) {
	info := ServiceInfo{
		Specs: "2.0.0.0", Name: "Thiqa remote signing", Region: "OM", Lang: "en",
		Description:    "Remote signing with sole control: citizen keys on the HSM, PIN-authorised, hash-bound one-time SADs.",
		AuthType:       []string{"external"},
		Methods:        []string{"credentials/list", "credentials/info", "credentials/authorize", "signatures/signHash"},
		SignAlgorithms: SignAlgorithms{Algos: slices.Sorted(maps.Keys(signAlgos))},
	}
	if a.oauth2 != "" {
		info.AuthType = append(info.AuthType, "oauth2code")
		info.OAuth2 = a.oauth2
		info.Methods = append(info.Methods, "oauth2/authorize", "oauth2/token")
	}
	signing.WriteJSON(w, http.StatusOK, info)
}

// decodeHashes checks base64 hashes against the hash algorithm (inferred
// from the length when oid is empty).
func decodeHashes(in []string, oid string, max int) ([][]byte, crypto.Hash, error) {
	if len(in) == 0 || len(in) > max {
		return nil, 0, signing.Refuse(signing.ErrBadRequest, "hashes must list 1 to %d values", max)
	}
	var h crypto.Hash
	if oid != "" {
		var ok bool
		if h, ok = signing.HashByOID(oid); !ok {
			return nil, 0, signing.Refuse(signing.ErrBadRequest, "hashAlgorithmOID %q is not SHA-256, SHA-384 or SHA-512", oid)
		}
	}
	out := make([][]byte, len(in))
	for i, s := range in {
		b, err := base64.StdEncoding.DecodeString(s)
		if err != nil {
			if b, err = base64.RawURLEncoding.DecodeString(s); err != nil {
				return nil, 0, signing.Refuse(signing.ErrBadRequest, "hashes[%d] is not base64", i)
			}
		}
		if h == 0 {
			h = map[int]crypto.Hash{32: crypto.SHA256, 48: crypto.SHA384, 64: crypto.SHA512}[len(b)]
		}
		if h == 0 || len(b) != h.Size() {
			return nil, 0, signing.Refuse(signing.ErrBadRequest, "hashes[%d] has %d bytes, not a hash of the stated algorithm", i, len(b))
		}
		out[i] = b
	}
	return out, h, nil
}

func hexList(hs [][]byte) []string {
	out := make([]string, len(hs))
	for i, h := range hs {
		out[i] = hex.EncodeToString(h)
	}
	return out
}

// authorize serves credentials/authorize: the PIN is checked (slow hash,
// locked after 5 consecutive wrong tries) and a SAD bound to exactly these
// hashes is returned, usable once before it expires.
func (a *API) authorize(w http.ResponseWriter, r *http.Request) {
	var req AuthorizeRequest
	if err := signing.DecodeJSON(w, r, &req); err != nil {
		a.fail(w, r, signing.ActionAuthorize, "", err, nil)
		return
	}
	if err := signing.RefuseCredentialScope(r); err != nil {
		a.fail(w, r, signing.ActionAuthorize, req.CredentialID, err, nil)
		return
	}
	cred, err := a.credential(r, req.CredentialID)
	if err != nil {
		a.fail(w, r, signing.ActionAuthorize, req.CredentialID, err, nil)
		return
	}
	cfg := a.s.Config()
	pinValue := req.pinOf()
	switch {
	case req.NumSignatures < 1:
		err = invalid("Invalid value for parameter numSignatures", nil)
	case req.NumSignatures > cfg.MaxHashesPerSAD:
		err = invalid("Numbers of signatures is too high", fmt.Errorf("at most %d (multisign)", cfg.MaxHashesPerSAD))
	}
	if err != nil {
		a.fail(w, r, signing.ActionAuthorize, req.CredentialID, err, nil)
		return
	}
	hashes, hh, err := decodeHashes(req.Hashes, req.HashAlgorithmOID, cfg.MaxHashesPerSAD)
	if err == nil && req.NumSignatures != len(hashes) {
		err = signing.Refuse(signing.ErrBadRequest, "numSignatures (%d) must equal the number of hashes (%d)", req.NumSignatures, len(hashes))
	}
	if err == nil && pinValue == "" {
		err = invalid("Missing (or invalid type) array parameter authData", errors.New("the signing PIN is required (authData id \"PIN\")"))
	}
	details := map[string]any{"method": "pin", "hashes": hexList(hashes), "hashAlgorithm": hh.String()}
	if err != nil {
		a.fail(w, r, signing.ActionAuthorize, req.CredentialID, err, details)
		return
	}
	if err := a.s.CheckCredentialPIN(r.Context(), cred, pinValue); err != nil {
		a.fail(w, r, signing.ActionAuthorize, req.CredentialID, err, details)
		return
	}
	sad, exp, err := a.s.IssueSAD(r.Context(), cred, hh, hashes)
	if err != nil {
		a.fail(w, r, signing.ActionAuthorize, req.CredentialID, err, details)
		return
	}
	details["expiresAt"] = exp.UTC()
	if err := a.s.Record(r.Context(), audit.Entry{Actor: signing.CitizenOf(r), Action: signing.ActionAuthorize, Object: cred.ID(),
		Outcome: audit.OutcomeSuccess, Details: details}); err != nil {
		a.fail(w, r, signing.ActionAuthorize, req.CredentialID, fmt.Errorf("%w: %w", signing.ErrAudit, err), nil)
		return
	}
	signing.WriteJSON(w, http.StatusOK, AuthorizeResponse{SAD: sad, ExpiresIn: int(cfg.SADLifetime / time.Second)})
}

// signHash serves signatures/signHash: the SAD is consumed (once, for
// this credential, unexpired) and every hash must be one it authorised.
// With an access token of scope credential the SAD is the token's (section
// 11.10: the SAD parameter is then not needed) and hashes it does not name
// are refused before it is spent.
func (a *API) signHash(w http.ResponseWriter, r *http.Request) {
	start := time.Now()
	var req SignHashRequest
	if err := signing.DecodeJSON(w, r, &req); err != nil {
		a.fail(w, r, signing.ActionSignHash, "", err, nil)
		return
	}
	cred, err := a.credential(r, req.CredentialID)
	if err != nil {
		a.fail(w, r, signing.ActionSignHash, req.CredentialID, err, nil)
		return
	}
	hashes, hh, err := decodeHashes(req.Hashes, req.HashAlgorithmOID, a.s.Config().MaxHashesPerSAD)
	details := map[string]any{"hashes": hexList(hashes), "hashAlgorithm": hh.String(), "signAlgo": req.SignAlgo}
	if g := signing.GrantOf(r); g != nil {
		details["client"], details["scope"] = g.ClientID, g.Scope // delegated through the digital ID
	}
	if err != nil {
		a.fail(w, r, signing.ActionSignHash, req.CredentialID, err, details)
		return
	}
	algo, ok := signAlgos[req.SignAlgo]
	_, isEC := cred.Signer().Public().(*ecdsa.PublicKey)
	switch {
	case !ok:
		err = signing.Refuse(signing.ErrBadRequest, "signAlgo %q is not supported", req.SignAlgo)
	case algo.ec != isEC:
		err = signing.Refuse(signing.ErrBadRequest, "signAlgo %q does not suit the credential's key", req.SignAlgo)
	case algo.hash != 0 && algo.hash != hh:
		err = signing.Refuse(signing.ErrBadRequest, "signAlgo %q names another hash than hashAlgorithmOID", req.SignAlgo)
	}
	sadValue, err := a.activation(r, req, cred, hh, hashes, err)
	if err != nil {
		a.fail(w, r, signing.ActionSignHash, req.CredentialID, err, details)
		return
	}
	sad, err := a.s.ConsumeSAD(r.Context(), sadValue, cred.ID())
	switch {
	case errors.Is(err, signing.ErrSADInvalid) && req.SAD == "":
		err = invalid("Invalid parameter SAD", errors.New("the access token's one-time authorisation was already used or has expired"))
	case errors.Is(err, signing.ErrSADInvalid):
		err = invalid("Invalid parameter SAD", err)
	case err == nil:
		if err = signing.CheckSAD(sad, signing.HashOID(hh), hashes); err != nil {
			err = invalid("Hash is not authorized by the SAD", err)
		}
	}
	if err != nil {
		a.fail(w, r, signing.ActionSignHash, req.CredentialID, err, details)
		return
	}
	var opts crypto.SignerOpts = hh
	if algo.pss {
		opts = &rsa.PSSOptions{SaltLength: rsa.PSSSaltLengthEqualsHash, Hash: hh}
	}
	sigs, err := signAll(cred.Signer(), hashes, opts)
	if err != nil {
		a.fail(w, r, signing.ActionSignHash, req.CredentialID, err, details)
		return
	}
	if err := a.s.Record(r.Context(), audit.Entry{Actor: signing.CitizenOf(r), Action: signing.ActionSignHash, Object: cred.ID(),
		Outcome: audit.OutcomeSuccess, Details: details}); err != nil {
		a.fail(w, r, signing.ActionSignHash, req.CredentialID, fmt.Errorf("%w: %w", signing.ErrAudit, err), nil)
		return
	}
	a.s.Observe("signhash", "raw", audit.OutcomeSuccess, time.Since(start))
	signing.WriteJSON(w, http.StatusOK, SignHashResponse{Signatures: sigs})
}

// activation returns the SAD that activates the key for signHash: the
// request's, or the one an access token of scope credential carries, once
// the token is found to authorise this credential and every hash. prior is
// an earlier refusal of the request, returned as it is.
func (a *API) activation(r *http.Request, req SignHashRequest, cred *signing.Credential, hh crypto.Hash, hashes [][]byte, prior error) (string, error) {
	if prior != nil {
		return "", prior
	}
	bound, authorised, delegated := signing.CredentialGrant(r)
	switch {
	case !delegated && req.SAD == "":
		return "", invalid("Missing (or invalid type) string parameter SAD", nil)
	case !delegated:
		return req.SAD, nil
	case cred.ID() != authorised.CredentialID:
		return "", invalid("Invalid parameter credentialID", errors.New("the access token authorises another credential"))
	case req.SAD != "" && req.SAD != bound:
		return "", invalid("Invalid parameter SAD", errors.New("an access token with scope credential signs with its own authorisation"))
	}
	if err := signing.CheckSAD(authorised, signing.HashOID(hh), hashes); err != nil {
		return "", invalid("Hash is not authorized by the access token", err)
	}
	return bound, nil
}

// signAll signs every hash, two at a time (a session each).
func signAll(key crypto.Signer, hashes [][]byte, opts crypto.SignerOpts) ([]string, error) {
	out := make([]string, len(hashes))
	errs := make([]error, len(hashes))
	var wg sync.WaitGroup
	sem := make(chan struct{}, 2)
	for i, h := range hashes {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			sig, err := key.Sign(rand.Reader, h, opts)
			if err != nil {
				errs[i] = fmt.Errorf("signing hash %d: %w", i, err)
				return
			}
			out[i] = base64.StdEncoding.EncodeToString(sig)
		}()
	}
	wg.Wait()
	return out, errors.Join(errs...)
}
