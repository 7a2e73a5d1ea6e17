package main

// The remote-signing API in the shape of the Cloud Signature Consortium API
// v2 (credentials/list, credentials/info, credentials/authorize,
// signatures/signHash). Errors use the CSC error shape
// (signing_csc_errors.go), not Thiqa's RFC 9457 problems.

import (
	"bytes"
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
	"github.com/thiqa/thiqa/store"
)

// Hash algorithm OIDs the CSC endpoints accept.
var cscHashes = map[string]crypto.Hash{
	"2.16.840.1.101.3.4.2.1": crypto.SHA256,
	"2.16.840.1.101.3.4.2.2": crypto.SHA384,
	"2.16.840.1.101.3.4.2.3": crypto.SHA512,
}

func hashOID(h crypto.Hash) string {
	for oid, x := range cscHashes {
		if x == h {
			return oid
		}
	}
	return ""
}

// cscSignAlgo describes a signAlgo OID: the key family, the hash it names
// (0: any) and whether it is RSASSA-PSS.
type cscSignAlgo struct {
	ec   bool
	hash crypto.Hash
	pss  bool
}

var cscSignAlgos = map[string]cscSignAlgo{
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

// CSCAuthorizeRequest is the body of credentials/authorize.
type CSCAuthorizeRequest struct {
	CredentialID     string   `json:"credentialID"`
	NumSignatures    int      `json:"numSignatures"`
	Hashes           []string `json:"hashes"`
	HashAlgorithmOID string   `json:"hashAlgorithmOID,omitempty"`
	// AuthData carries the authentication objects (CSC API v2 section
	// 11.6): {"id": "PIN", "value": "..."}.
	AuthData []CSCAuthObject `json:"authData,omitempty"`
	// PIN is the CSC v1 way of sending the PIN, still accepted.
	PIN string `json:"PIN,omitempty"`
}

// CSCAuthObject is one authentication object of credentials/authorize.
type CSCAuthObject struct {
	ID    string `json:"id"`
	Value string `json:"value"`
}

// pinOf returns the PIN sent in authData (id "PIN") or in the v1 PIN field.
func (req *CSCAuthorizeRequest) pinOf() string {
	for _, a := range req.AuthData {
		if a.ID == "PIN" {
			return a.Value
		}
	}
	return req.PIN
}

// CSCAuthorizeResponse answers credentials/authorize.
type CSCAuthorizeResponse struct {
	SAD       string `json:"SAD"`
	ExpiresIn int    `json:"expiresIn"`
}

// CSCSignHashRequest is the body of signatures/signHash.
type CSCSignHashRequest struct {
	CredentialID     string   `json:"credentialID"`
	SAD              string   `json:"SAD"`
	Hashes           []string `json:"hashes"`
	HashAlgorithmOID string   `json:"hashAlgorithmOID,omitempty"`
	SignAlgo         string   `json:"signAlgo"`
}

// CSCSignHashResponse answers signatures/signHash.
type CSCSignHashResponse struct {
	Signatures []string `json:"signatures"`
}

// cscFail answers a refusal with a CSC error body (CSC API v2 section 10)
// and audits it; the audit record and metrics are those of every signing
// refusal.
func (h *signingHTTP) cscFail(w http.ResponseWriter, r *http.Request, action, credID string, err error, details map[string]any) {
	status, msg, outcome := classify(err)
	var cr *cscRefusal
	if errors.As(err, &cr) {
		status, outcome = cr.status, audit.OutcomeRefused
		if _, inner, innerOutcome := classify(cr.err); cr.err != nil && inner != "signing failed" {
			msg, outcome = inner, innerOutcome
		} else {
			msg = cr.Error()
		}
	}
	if status >= 500 {
		h.s.logger.WarnContext(r.Context(), "CSC request failed", "action", action, "credential", credID, "err", err)
	}
	if details == nil {
		details = map[string]any{}
	}
	details["reason"] = msg
	details["caller"] = auth.CallerOf(r.Context())
	if _, aerr := h.s.audit.Append(r.Context(), audit.Entry{Actor: citizenOf(r), Action: action, Object: credID, Outcome: outcome, Details: details}); aerr != nil {
		h.s.logger.ErrorContext(r.Context(), "audit append failed", "err", aerr)
	}
	if action == actionSignHash {
		h.s.metrics.observe("signhash", "raw", outcome, 0)
	}
	status, code, description := cscClassify(err, status, msg)
	writeCSCError(w, status, code, description)
}

// cscCredential loads one of the caller's citizen-signing credentials for a
// CSC method: a missing credentialID and a credential that is unknown or not
// the caller's are the specification's invalid_request errors.
func (h *signingHTTP) cscCredential(r *http.Request, id string) (*signingCredential, error) {
	if id == "" {
		return nil, cscInvalid("Missing (or invalid type) string parameter credentialID", nil)
	}
	cred, err := h.s.credential(r.Context(), id, store.OwnerCitizen, citizenOf(r))
	var he *httpError
	if errors.As(err, &he) && he.status == http.StatusForbidden {
		// An expired, not yet valid or revoked certificate (section 11.10:
		// "Signing certificate is expired", 400 invalid_request).
		return nil, cscInvalid("The signing certificate is not valid", err)
	}
	return cred, err
}

// CSCServiceInfo answers POST /csc/v2/info (public).
type CSCServiceInfo struct {
	Specs       string   `json:"specs"`
	Name        string   `json:"name"`
	Logo        string   `json:"logo"`
	Region      string   `json:"region"`
	Lang        string   `json:"lang"`
	Description string   `json:"description"`
	AuthType    []string `json:"authType"`
	Methods     []string `json:"methods"`
	// SignAlgorithms lists the signAlgo OIDs signatures/signHash accepts.
	SignAlgorithms CSCSignAlgorithms `json:"signAlgorithms"`
}

// CSCSignAlgorithms is the signAlgorithms object of info.
type CSCSignAlgorithms struct {
	Algos []string `json:"algos"`
}

// cscInfoService serves POST /csc/v2/info: what this remote signing
// service implements. Callers authenticate with a bearer token issued by the
// deployment's identity provider ("external" in CSC terms).
func cscInfoService(w http.ResponseWriter, _ *http.Request) {
	writeJSON(w, http.StatusOK, CSCServiceInfo{
		Specs: "2.0.0.0", Name: "Thiqa remote signing", Region: "OM", Lang: "en",
		Description:    "Remote signing with sole control: citizen keys on the HSM, PIN-authorised, hash-bound one-time SADs.",
		AuthType:       []string{"external"},
		Methods:        []string{"credentials/list", "credentials/info", "credentials/authorize", "signatures/signHash"},
		SignAlgorithms: CSCSignAlgorithms{Algos: slices.Sorted(maps.Keys(cscSignAlgos))},
	})
}

// decodeHashes checks base64 hashes against the hash algorithm (inferred
// from the length when oid is empty).
func decodeHashes(in []string, oid string, max int) ([][]byte, crypto.Hash, error) {
	if len(in) == 0 || len(in) > max {
		return nil, 0, refuse(http.StatusBadRequest, "hashes must list 1 to %d values", max)
	}
	var h crypto.Hash
	if oid != "" {
		var ok bool
		if h, ok = cscHashes[oid]; !ok {
			return nil, 0, refuse(http.StatusBadRequest, "hashAlgorithmOID %q is not SHA-256, SHA-384 or SHA-512", oid)
		}
	}
	out := make([][]byte, len(in))
	for i, s := range in {
		b, err := base64.StdEncoding.DecodeString(s)
		if err != nil {
			if b, err = base64.RawURLEncoding.DecodeString(s); err != nil {
				return nil, 0, refuse(http.StatusBadRequest, "hashes[%d] is not base64", i)
			}
		}
		if h == 0 {
			h = map[int]crypto.Hash{32: crypto.SHA256, 48: crypto.SHA384, 64: crypto.SHA512}[len(b)]
		}
		if h == 0 || len(b) != h.Size() {
			return nil, 0, refuse(http.StatusBadRequest, "hashes[%d] has %d bytes, not a hash of the stated algorithm", i, len(b))
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

// cscAuthorize serves credentials/authorize: the PIN is checked (slow hash,
// locked after 5 consecutive wrong tries) and a SAD bound to exactly these
// hashes is returned, usable once before it expires.
func (h *signingHTTP) cscAuthorize(w http.ResponseWriter, r *http.Request) {
	var req CSCAuthorizeRequest
	if err := decodeJSONBody(w, r, &req); err != nil {
		h.cscFail(w, r, actionAuthorize, "", err, nil)
		return
	}
	cred, err := h.cscCredential(r, req.CredentialID)
	if err != nil {
		h.cscFail(w, r, actionAuthorize, req.CredentialID, err, nil)
		return
	}
	pinValue := req.pinOf()
	switch {
	case req.NumSignatures < 1:
		err = cscInvalid("Invalid value for parameter numSignatures", nil)
	case req.NumSignatures > h.s.cfg.MaxHashesPerSAD:
		err = cscInvalid("Numbers of signatures is too high", fmt.Errorf("at most %d (multisign)", h.s.cfg.MaxHashesPerSAD))
	}
	if err != nil {
		h.cscFail(w, r, actionAuthorize, req.CredentialID, err, nil)
		return
	}
	hashes, hh, err := decodeHashes(req.Hashes, req.HashAlgorithmOID, h.s.cfg.MaxHashesPerSAD)
	if err == nil && req.NumSignatures != len(hashes) {
		err = refuse(http.StatusBadRequest, "numSignatures (%d) must equal the number of hashes (%d)", req.NumSignatures, len(hashes))
	}
	if err == nil && pinValue == "" {
		err = cscInvalid("Missing (or invalid type) array parameter authData", errors.New("the signing PIN is required (authData id \"PIN\")"))
	}
	details := map[string]any{"method": "pin", "hashes": hexList(hashes), "hashAlgorithm": hh.String()}
	if err != nil {
		h.cscFail(w, r, actionAuthorize, req.CredentialID, err, details)
		return
	}
	if err := h.s.pins.Check(r.Context(), cred.rec.ID, pinValue); err != nil {
		h.cscFail(w, r, actionAuthorize, req.CredentialID, err, details)
		return
	}
	var raw [32]byte
	if _, err := rand.Read(raw[:]); err != nil {
		h.cscFail(w, r, actionAuthorize, req.CredentialID, err, details)
		return
	}
	sad := base64.RawURLEncoding.EncodeToString(raw[:])
	exp := h.s.now().Add(h.s.cfg.SADLifetime)
	if err := h.s.creds.InsertSAD(r.Context(), sad, store.SAD{CredentialID: cred.rec.ID, HashAlg: hashOID(hh), Hashes: hashes,
		NumSignatures: len(hashes), ExpiresAt: exp}); err != nil {
		h.cscFail(w, r, actionAuthorize, req.CredentialID, err, details)
		return
	}
	details["expiresAt"] = exp.UTC()
	if _, err := h.s.audit.Append(r.Context(), audit.Entry{Actor: citizenOf(r), Action: actionAuthorize, Object: cred.rec.ID,
		Outcome: audit.OutcomeSuccess, Details: details}); err != nil {
		h.cscFail(w, r, actionAuthorize, req.CredentialID, fmt.Errorf("%w: %v", errAudit, err), nil)
		return
	}
	writeJSON(w, http.StatusOK, CSCAuthorizeResponse{SAD: sad, ExpiresIn: int(h.s.cfg.SADLifetime / time.Second)})
}

// cscSignHash serves signatures/signHash: the SAD is consumed (once, for
// this credential, unexpired) and every hash must be one it authorised.
func (h *signingHTTP) cscSignHash(w http.ResponseWriter, r *http.Request) {
	start := time.Now()
	var req CSCSignHashRequest
	if err := decodeJSONBody(w, r, &req); err != nil {
		h.cscFail(w, r, actionSignHash, "", err, nil)
		return
	}
	cred, err := h.cscCredential(r, req.CredentialID)
	if err != nil {
		h.cscFail(w, r, actionSignHash, req.CredentialID, err, nil)
		return
	}
	hashes, hh, err := decodeHashes(req.Hashes, req.HashAlgorithmOID, h.s.cfg.MaxHashesPerSAD)
	details := map[string]any{"hashes": hexList(hashes), "hashAlgorithm": hh.String(), "signAlgo": req.SignAlgo}
	if err != nil {
		h.cscFail(w, r, actionSignHash, req.CredentialID, err, details)
		return
	}
	algo, ok := cscSignAlgos[req.SignAlgo]
	_, isEC := cred.key.Public().(*ecdsa.PublicKey)
	switch {
	case !ok:
		err = refuse(http.StatusBadRequest, "signAlgo %q is not supported", req.SignAlgo)
	case algo.ec != isEC:
		err = refuse(http.StatusBadRequest, "signAlgo %q does not suit the credential's key", req.SignAlgo)
	case algo.hash != 0 && algo.hash != hh:
		err = refuse(http.StatusBadRequest, "signAlgo %q names another hash than hashAlgorithmOID", req.SignAlgo)
	case req.SAD == "":
		err = cscInvalid("Missing (or invalid type) string parameter SAD", nil)
	}
	if err != nil {
		h.cscFail(w, r, actionSignHash, req.CredentialID, err, details)
		return
	}
	sad, err := h.s.creds.ConsumeSAD(r.Context(), req.SAD, cred.rec.ID, h.s.now())
	if errors.Is(err, store.ErrNotFound) {
		err = cscInvalid("Invalid parameter SAD", errors.New("the SAD is invalid, expired, already used or for another credential"))
	}
	if err == nil {
		err = sadCovers(sad, hashOID(hh), hashes)
	}
	if err != nil {
		h.cscFail(w, r, actionSignHash, req.CredentialID, err, details)
		return
	}
	var opts crypto.SignerOpts = hh
	if algo.pss {
		opts = &rsa.PSSOptions{SaltLength: rsa.PSSSaltLengthEqualsHash, Hash: hh}
	}
	sigs, err := signAll(cred.key, hashes, opts)
	if err != nil {
		h.cscFail(w, r, actionSignHash, req.CredentialID, err, details)
		return
	}
	if _, err := h.s.audit.Append(r.Context(), audit.Entry{Actor: citizenOf(r), Action: actionSignHash, Object: cred.rec.ID,
		Outcome: audit.OutcomeSuccess, Details: details}); err != nil {
		h.cscFail(w, r, actionSignHash, req.CredentialID, fmt.Errorf("%w: %v", errAudit, err), nil)
		return
	}
	h.s.metrics.observe("signhash", "raw", audit.OutcomeSuccess, time.Since(start))
	writeJSON(w, http.StatusOK, CSCSignHashResponse{Signatures: sigs})
}

// sadCovers checks that every hash was authorised by the SAD.
func sadCovers(sad *store.SAD, alg string, hashes [][]byte) error {
	if sad.HashAlg != alg {
		return cscInvalid("Hash is not authorized by the SAD", errors.New("the SAD authorised another hash algorithm"))
	}
	if len(hashes) > sad.NumSignatures {
		return cscInvalid("Hash is not authorized by the SAD", fmt.Errorf("the SAD authorised %d signatures, %d asked", sad.NumSignatures, len(hashes)))
	}
	left := append([][]byte(nil), sad.Hashes...)
next:
	for i, h := range hashes {
		for j, a := range left {
			if bytes.Equal(a, h) {
				left = append(left[:j], left[j+1:]...)
				continue next
			}
		}
		return cscInvalid("Hash is not authorized by the SAD", fmt.Errorf("hashes[%d] was not authorised by the SAD", i))
	}
	return nil
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
