package main

// credentials/list and credentials/info of the CSC API v2 (sections 11.4
// and 11.5): the caller's citizen-signing credentials and what a signature
// application needs to use one.

import (
	"context"
	"crypto/ecdsa"
	"crypto/rsa"
	"encoding/base64"
	"errors"
	"fmt"
	"net/http"
	"strings"

	"github.com/thiqa/thiqa/internal/audit"
	"github.com/thiqa/thiqa/store"
)

// CSCListRequest is the body of credentials/list.
type CSCListRequest struct {
	// UserID must be absent: the user is the authenticated caller.
	UserID         string `json:"userID,omitempty"`
	CredentialInfo bool   `json:"credentialInfo,omitempty"`
	Certificates   string `json:"certificates,omitempty"` // none, single or chain (default single)
	CertInfo       bool   `json:"certInfo,omitempty"`
	AuthInfo       bool   `json:"authInfo,omitempty"`
	OnlyValid      bool   `json:"onlyValid,omitempty"`
	Lang           string `json:"lang,omitempty"`
	ClientData     string `json:"clientData,omitempty"`
	// MaxResults is the CSC v1 parameter, still honoured.
	MaxResults int `json:"maxResults,omitempty"`
}

// CSCListResponse answers credentials/list.
type CSCListResponse struct {
	CredentialIDs   []string            `json:"credentialIDs"`
	CredentialInfos []CSCCredentialInfo `json:"credentialInfos,omitempty"`
	// OnlyValid is true when onlyValid was asked for (and honoured).
	OnlyValid bool `json:"onlyValid,omitempty"`
}

// CSCCredentialInfo is one entry of credentialInfos.
type CSCCredentialInfo struct {
	CredentialID string `json:"credentialID"`
	CSCInfoResponse
}

// CSCInfoRequest is the body of credentials/info.
type CSCInfoRequest struct {
	CredentialID string `json:"credentialID"`
	Certificates string `json:"certificates,omitempty"` // none, single or chain (default single)
	CertInfo     bool   `json:"certInfo,omitempty"`
	AuthInfo     bool   `json:"authInfo,omitempty"`
	Lang         string `json:"lang,omitempty"`
	ClientData   string `json:"clientData,omitempty"`
}

// CSCKeyInfo describes a credential's key.
type CSCKeyInfo struct {
	Status string   `json:"status"`
	Algo   []string `json:"algo,omitempty"`
	Len    int      `json:"len,omitempty"`
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

// CSCAuthInfo is the v2 "auth" object: how the credential is authorised.
type CSCAuthInfo struct {
	Mode       string        `json:"mode"`
	Expression string        `json:"expression,omitempty"`
	Objects    []CSCAuthType `json:"objects,omitempty"`
}

// CSCAuthType describes one authentication object (CSC API v2 section 8.3).
type CSCAuthType struct {
	Type        string `json:"type"`
	ID          string `json:"id"`
	Format      string `json:"format,omitempty"`
	Label       string `json:"label,omitempty"`
	Description string `json:"description,omitempty"`
}

// CSCPINInfo describes the PIN that activates the credential (the CSC v1
// "PIN" object, kept for v1-era clients).
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
	Description string       `json:"description,omitempty"`
	Key         CSCKeyInfo   `json:"key"`
	Cert        CSCCertInfo  `json:"cert"`
	Auth        *CSCAuthInfo `json:"auth,omitempty"`
	SCAL        string       `json:"SCAL,omitempty"`
	Multisign   int          `json:"multisign,omitempty"`
	Lang        string       `json:"lang,omitempty"`
	// AuthMode and PIN are the CSC v1 form of Auth.
	AuthMode string      `json:"authMode,omitempty"`
	PIN      *CSCPINInfo `json:"PIN,omitempty"`
}

// checkCertificates validates the certificates parameter.
func checkCertificates(v string) error {
	switch v {
	case "", "none", "single", "chain":
		return nil
	}
	return cscInvalid("Invalid parameter certificates", nil)
}

// cscList serves credentials/list: the caller's citizen-signing credentials.
func (h *signingHTTP) cscList(w http.ResponseWriter, r *http.Request) {
	var req CSCListRequest
	if r.ContentLength != 0 {
		if err := decodeJSONBody(w, r, &req); err != nil {
			h.cscFail(w, r, actionList, "", err, nil)
			return
		}
	}
	owner := citizenOf(r)
	err := checkCertificates(req.Certificates)
	switch {
	case req.UserID != "":
		err = cscInvalid("userID parameter MUST be null", errors.New("the user is the authenticated caller"))
	case owner == "":
		err = &cscRefusal{status: http.StatusForbidden, code: cscAccessDenied, spec: "The caller has no citizen identity"}
	}
	if err == nil {
		err = h.s.syncCredentials(r.Context())
	}
	var list []*store.SigningCredential
	if err == nil {
		list, err = h.s.creds.CredentialsOf(r.Context(), store.OwnerCitizen, owner)
	}
	if err != nil {
		h.cscFail(w, r, actionList, "", err, nil)
		return
	}
	// A list of credentials is personal data: the read is recorded.
	if _, err := h.s.audit.Append(r.Context(), audit.Entry{Actor: owner, Action: actionList, Object: owner, Outcome: audit.OutcomeSuccess,
		Details: map[string]any{"credentials": len(list)}}); err != nil {
		h.cscFail(w, r, actionList, "", fmt.Errorf("%w: %v", errAudit, err), nil)
		return
	}
	out := CSCListResponse{CredentialIDs: []string{}, OnlyValid: req.OnlyValid}
	for _, c := range list {
		if req.MaxResults > 0 && len(out.CredentialIDs) == req.MaxResults {
			break
		}
		if !req.CredentialInfo && !req.OnlyValid {
			out.CredentialIDs = append(out.CredentialIDs, c.ID)
			continue
		}
		info, err := h.credentialEntry(r.Context(), c.ID, owner, req.Certificates, req.CertInfo)
		if errors.Is(err, errCredentialRefused) {
			continue // its key is not on the token: neither usable nor describable
		}
		if err != nil {
			h.cscFail(w, r, actionList, c.ID, err, nil)
			return
		}
		if req.OnlyValid && (info.Key.Status != "enabled" || info.Cert.Status != "valid") {
			continue
		}
		out.CredentialIDs = append(out.CredentialIDs, c.ID)
		if req.CredentialInfo {
			out.CredentialInfos = append(out.CredentialInfos, info)
		}
	}
	writeJSON(w, http.StatusOK, out)
}

// credentialEntry describes one of owner's credentials for credentialInfos;
// a credential whose certificate is no longer usable is listed with a
// disabled key and the certificate's status.
func (h *signingHTTP) credentialEntry(ctx context.Context, id, owner, certificates string, certInfo bool) (CSCCredentialInfo, error) {
	cred, err := h.s.credential(ctx, id, store.OwnerCitizen, owner)
	var he *httpError
	if errors.As(err, &he) {
		status := "expired"
		if errors.Is(err, errCertificateRevoked) {
			status = "revoked"
		}
		return CSCCredentialInfo{CredentialID: id, CSCInfoResponse: CSCInfoResponse{
			Key: CSCKeyInfo{Status: "disabled"}, Cert: CSCCertInfo{Status: status}, Auth: pinAuth()}}, nil
	}
	if err != nil {
		return CSCCredentialInfo{}, err
	}
	info, err := h.credentialInfo(ctx, cred, certificates, certInfo)
	return CSCCredentialInfo{CredentialID: id, CSCInfoResponse: info}, err
}

// cscInfo serves credentials/info for one of the caller's credentials.
func (h *signingHTTP) cscInfo(w http.ResponseWriter, r *http.Request) {
	var req CSCInfoRequest
	if err := decodeJSONBody(w, r, &req); err != nil {
		h.cscFail(w, r, actionInfo, "", err, nil)
		return
	}
	cred, err := h.cscCredential(r, req.CredentialID)
	if err == nil {
		err = checkCertificates(req.Certificates)
	}
	if err != nil {
		h.cscFail(w, r, actionInfo, req.CredentialID, err, nil)
		return
	}
	out, err := h.credentialInfo(r.Context(), cred, req.Certificates, req.CertInfo)
	if err != nil {
		h.cscFail(w, r, actionInfo, req.CredentialID, err, nil)
		return
	}
	// Credential information is personal data: the read is recorded.
	if _, err := h.s.audit.Append(r.Context(), audit.Entry{Actor: citizenOf(r), Action: actionInfo, Object: cred.rec.ID, Outcome: audit.OutcomeSuccess}); err != nil {
		h.cscFail(w, r, actionInfo, req.CredentialID, fmt.Errorf("%w: %v", errAudit, err), nil)
		return
	}
	writeJSON(w, http.StatusOK, out)
}

// pinAuth is the v2 auth object of every citizen credential: one PIN.
func pinAuth() *CSCAuthInfo {
	return &CSCAuthInfo{Mode: "explicit", Expression: "PIN", Objects: []CSCAuthType{{
		Type: "Password", ID: "PIN", Format: "A", Label: "Signing PIN",
		Description: "The signing PIN set at enrolment (locked after too many wrong tries)",
	}}}
}

// credentialInfo describes a usable credential (CSC API v2 section 11.5).
func (h *signingHTTP) credentialInfo(ctx context.Context, cred *signingCredential, certificates string, certInfo bool) (CSCInfoResponse, error) {
	rec, err := h.s.creds.Credential(ctx, cred.rec.ID) // fresh PIN state
	if err != nil {
		return CSCInfoResponse{}, err
	}
	locked := rec.PINFailures >= h.s.pins.Params().MaxFailures
	leaf := cred.chain[0]
	out := CSCInfoResponse{
		Description: "Qualified electronic signature key of " + leaf.Subject.CommonName,
		Auth:        pinAuth(), SCAL: "2", Multisign: h.s.cfg.MaxHashesPerSAD, Lang: "en",
		AuthMode: "explicit",
		PIN:      &CSCPINInfo{Presence: "true", Format: "A", Label: "Signing PIN", Set: rec.PINSet, Locked: locked},
		Cert:     CSCCertInfo{Status: "valid"}, // h.s.credential refuses expired and revoked certificates
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
	switch certificates {
	case "none":
	case "chain":
		for _, c := range cred.chain {
			out.Cert.Certificates = append(out.Cert.Certificates, base64.StdEncoding.EncodeToString(c.Raw))
		}
	default:
		out.Cert.Certificates = []string{base64.StdEncoding.EncodeToString(leaf.Raw)}
	}
	if certInfo {
		out.Cert.IssuerDN, out.Cert.SubjectDN = leaf.Issuer.String(), leaf.Subject.String()
		out.Cert.SerialNumber = strings.ToUpper(leaf.SerialNumber.Text(16))
		out.Cert.ValidFrom, out.Cert.ValidTo = leaf.NotBefore.UTC().Format("20060102150405Z"), leaf.NotAfter.UTC().Format("20060102150405Z")
	}
	return out, nil
}
