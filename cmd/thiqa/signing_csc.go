package main

// The remote-signing API in the shape of the Cloud Signature Consortium API
// v2 (credentials/list, credentials/info, credentials/authorize,
// signatures/signHash). Errors are RFC 9457 problem bodies, like every
// Thiqa API, with the CSC error name in the title.

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
	"net/http"
	"sync"
	"time"

	"github.com/thiqa/thiqa/internal/audit"
	"github.com/thiqa/thiqa/internal/problem"
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

// CSCListRequest is the body of credentials/list.
type CSCListRequest struct {
	MaxResults int `json:"maxResults,omitempty"`
}

// CSCListResponse answers credentials/list.
type CSCListResponse struct {
	CredentialIDs []string `json:"credentialIDs"`
}

// CSCInfoRequest is the body of credentials/info.
type CSCInfoRequest struct {
	CredentialID string `json:"credentialID"`
	Certificates string `json:"certificates,omitempty"` // none, single or chain (default single)
	CertInfo     bool   `json:"certInfo,omitempty"`
}

// CSCKeyInfo describes a credential's key.
type CSCKeyInfo struct {
	Status string   `json:"status"`
	Algo   []string `json:"algo"`
	Len    int      `json:"len"`
	Curve  string   `json:"curve,omitempty"`
}

// CSCCertInfo describes a credential's certificate.
type CSCCertInfo struct {
	Status       string   `json:"status"`
	Certificates []string `json:"certificates,omitempty"`
	IssuerDN     string   `json:"issuerDN,omitempty"`
	SerialNumber string   `json:"serialNumber,omitempty"`
	SubjectDN    string   `json:"subjectDN,omitempty"`
	ValidFrom    string   `json:"validFrom,omitempty"`
	ValidTo      string   `json:"validTo,omitempty"`
}

// CSCPINInfo describes the PIN that activates the credential.
type CSCPINInfo struct {
	Presence string `json:"presence"`
	Format   string `json:"format"`
	Label    string `json:"label"`
	// Set and Locked are Thiqa's additions: enrolled, and locked after
	// too many wrong tries.
	Set    bool `json:"set"`
	Locked bool `json:"locked"`
}

// CSCInfoResponse answers credentials/info.
type CSCInfoResponse struct {
	Description string      `json:"description"`
	Key         CSCKeyInfo  `json:"key"`
	Cert        CSCCertInfo `json:"cert"`
	AuthMode    string      `json:"authMode"`
	SCAL        string      `json:"SCAL"`
	PIN         CSCPINInfo  `json:"PIN"`
	Multisign   int         `json:"multisign"`
	Lang        string      `json:"lang"`
}

// CSCAuthorizeRequest is the body of credentials/authorize.
type CSCAuthorizeRequest struct {
	CredentialID     string   `json:"credentialID"`
	NumSignatures    int      `json:"numSignatures"`
	Hashes           []string `json:"hashes"`
	HashAlgorithmOID string   `json:"hashAlgorithmOID,omitempty"`
	PIN              string   `json:"PIN"`
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

// cscFail answers a refusal with a problem and audits it.
func (h *signingHTTP) cscFail(w http.ResponseWriter, r *http.Request, action, credID string, err error, details map[string]any) {
	status, msg, outcome := classify(err)
	if status >= 500 {
		h.s.logger.WarnContext(r.Context(), "CSC request failed", "action", action, "credential", credID, "err", err)
	}
	if details == nil {
		details = map[string]any{}
	}
	details["reason"] = msg
	if _, aerr := h.s.audit.Append(r.Context(), audit.Entry{Actor: citizenOf(r), Action: action, Object: credID, Outcome: outcome, Details: details}); aerr != nil {
		h.s.logger.ErrorContext(r.Context(), "audit append failed", "err", aerr)
	}
	if action == actionSignHash {
		h.s.metrics.observe("signhash", "raw", outcome, 0)
	}
	title := "invalid_request"
	switch status {
	case http.StatusForbidden, http.StatusLocked, http.StatusUnauthorized:
		title = "access_denied"
	case http.StatusInternalServerError, http.StatusBadGateway, http.StatusGatewayTimeout:
		title = "server_error"
	}
	problem.Write(w, problem.Details{Status: status, Title: title, Detail: msg, Instance: r.URL.Path})
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
}

// cscInfoService serves POST /csc/v2/info: what this remote signing
// service implements. Callers authenticate with a bearer token issued by the
// deployment's identity provider ("external" in CSC terms).
func cscInfoService(w http.ResponseWriter, _ *http.Request) {
	writeJSON(w, http.StatusOK, CSCServiceInfo{
		Specs: "2.0.0.0", Name: "Thiqa remote signing", Region: "OM", Lang: "en",
		Description: "Remote signing with sole control: citizen keys on the HSM, PIN-authorised, hash-bound one-time SADs.",
		AuthType:    []string{"external"},
		Methods:     []string{"credentials/list", "credentials/info", "credentials/authorize", "signatures/signHash"},
	})
}

// cscList serves credentials/list: the caller's citizen-signing credentials.
func (h *signingHTTP) cscList(w http.ResponseWriter, r *http.Request) {
	var req CSCListRequest
	if r.ContentLength != 0 {
		if err := decodeJSONBody(w, r, &req); err != nil {
			h.cscFail(w, r, "credential.list", "", err, nil)
			return
		}
	}
	owner := citizenOf(r)
	if owner == "" {
		h.cscFail(w, r, "credential.list", "", refuse(http.StatusForbidden, "the caller has no citizen identity"), nil)
		return
	}
	if err := h.s.syncCredentials(r.Context()); err != nil {
		h.cscFail(w, r, "credential.list", "", err, nil)
		return
	}
	list, err := h.s.creds.CredentialsOf(r.Context(), store.OwnerCitizen, owner)
	if err != nil {
		h.cscFail(w, r, "credential.list", "", err, nil)
		return
	}
	out := CSCListResponse{CredentialIDs: []string{}}
	for _, c := range list {
		if req.MaxResults > 0 && len(out.CredentialIDs) == req.MaxResults {
			break
		}
		out.CredentialIDs = append(out.CredentialIDs, c.ID)
	}
	writeJSON(w, http.StatusOK, out)
}

// cscInfo serves credentials/info for one of the caller's credentials.
func (h *signingHTTP) cscInfo(w http.ResponseWriter, r *http.Request) {
	var req CSCInfoRequest
	if err := decodeJSONBody(w, r, &req); err != nil {
		h.cscFail(w, r, "credential.info", "", err, nil)
		return
	}
	cred, err := h.s.credential(r.Context(), req.CredentialID, store.OwnerCitizen, citizenOf(r))
	if err != nil {
		h.cscFail(w, r, "credential.info", req.CredentialID, err, nil)
		return
	}
	rec, err := h.s.creds.Credential(r.Context(), req.CredentialID) // fresh PIN state
	if err != nil {
		h.cscFail(w, r, "credential.info", req.CredentialID, err, nil)
		return
	}
	locked := rec.PINFailures >= h.s.pins.Params().MaxFailures
	leaf := cred.chain[0]
	out := CSCInfoResponse{
		Description: "Qualified electronic signature key of " + leaf.Subject.CommonName,
		AuthMode:    "explicit", SCAL: "SCAL2", Multisign: h.s.cfg.MaxHashesPerSAD, Lang: "en",
		PIN:  CSCPINInfo{Presence: "true", Format: "A", Label: "Signing PIN", Set: rec.PINSet, Locked: locked},
		Cert: CSCCertInfo{Status: "valid"},
	}
	out.Key.Status = "enabled"
	if locked || !rec.PINSet {
		out.Key.Status = "disabled"
	}
	switch k := leaf.PublicKey.(type) {
	case *ecdsa.PublicKey:
		out.Key.Algo = []string{"1.2.840.10045.2.1", "1.2.840.10045.4.3.2", "1.2.840.10045.4.3.3", "1.2.840.10045.4.3.4"}
		out.Key.Len = k.Curve.Params().BitSize
		out.Key.Curve = map[int]string{256: "1.2.840.10045.3.1.7", 384: "1.3.132.0.34", 521: "1.3.132.0.35"}[out.Key.Len]
	case *rsa.PublicKey:
		out.Key.Algo = []string{"1.2.840.113549.1.1.1", "1.2.840.113549.1.1.11", "1.2.840.113549.1.1.12", "1.2.840.113549.1.1.13", "1.2.840.113549.1.1.10"}
		out.Key.Len = k.N.BitLen()
	}
	switch req.Certificates {
	case "none":
	case "chain":
		for _, c := range cred.chain {
			out.Cert.Certificates = append(out.Cert.Certificates, base64.StdEncoding.EncodeToString(c.Raw))
		}
	default:
		out.Cert.Certificates = []string{base64.StdEncoding.EncodeToString(leaf.Raw)}
	}
	if req.CertInfo {
		out.Cert.IssuerDN, out.Cert.SubjectDN = leaf.Issuer.String(), leaf.Subject.String()
		out.Cert.SerialNumber = leaf.SerialNumber.Text(16)
		out.Cert.ValidFrom, out.Cert.ValidTo = leaf.NotBefore.UTC().Format("20060102150405Z"), leaf.NotAfter.UTC().Format("20060102150405Z")
	}
	writeJSON(w, http.StatusOK, out)
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
	cred, err := h.s.credential(r.Context(), req.CredentialID, store.OwnerCitizen, citizenOf(r))
	if err != nil {
		h.cscFail(w, r, actionAuthorize, req.CredentialID, err, nil)
		return
	}
	hashes, hh, err := decodeHashes(req.Hashes, req.HashAlgorithmOID, h.s.cfg.MaxHashesPerSAD)
	if err == nil && req.NumSignatures != len(hashes) {
		err = refuse(http.StatusBadRequest, "numSignatures (%d) must equal the number of hashes (%d)", req.NumSignatures, len(hashes))
	}
	if err == nil && req.PIN == "" {
		err = refuse(http.StatusBadRequest, "PIN is required")
	}
	details := map[string]any{"method": "pin", "hashes": hexList(hashes), "hashAlgorithm": hh.String()}
	if err != nil {
		h.cscFail(w, r, actionAuthorize, req.CredentialID, err, details)
		return
	}
	if err := h.s.pins.Check(r.Context(), cred.rec.ID, req.PIN); err != nil {
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
	cred, err := h.s.credential(r.Context(), req.CredentialID, store.OwnerCitizen, citizenOf(r))
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
		err = refuse(http.StatusBadRequest, "SAD is required")
	}
	if err != nil {
		h.cscFail(w, r, actionSignHash, req.CredentialID, err, details)
		return
	}
	sad, err := h.s.creds.ConsumeSAD(r.Context(), req.SAD, cred.rec.ID, h.s.now())
	if errors.Is(err, store.ErrNotFound) {
		err = refuse(http.StatusForbidden, "the SAD is invalid, expired, already used or for another credential")
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
		return refuse(http.StatusForbidden, "the SAD authorised another hash algorithm")
	}
	if len(hashes) > sad.NumSignatures {
		return refuse(http.StatusForbidden, "the SAD authorised %d signatures, %d asked", sad.NumSignatures, len(hashes))
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
		return refuse(http.StatusForbidden, "hashes[%d] was not authorised by the SAD", i)
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
