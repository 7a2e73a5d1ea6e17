package csc

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
	"github.com/thiqa/thiqa/signing"
)

// ListRequest is the body of credentials/list (CSC API v2 section 11.4;
// the fields are its parameters of the same names).
type ListRequest struct {
	// UserID must be absent: the user is the authenticated caller.
	UserID string `json:"userID,omitempty"`
	// CredentialInfo asks for each credential's information too.
	CredentialInfo bool `json:"credentialInfo,omitempty"`
	// Certificates is none, single or chain (default single).
	Certificates string `json:"certificates,omitempty"`
	// CertInfo asks for the certificates' details.
	CertInfo bool `json:"certInfo,omitempty"`
	// AuthInfo asks for the authorisation details (always given).
	AuthInfo bool `json:"authInfo,omitempty"`
	// OnlyValid lists only the credentials usable now.
	OnlyValid bool `json:"onlyValid,omitempty"`
	// Lang and ClientData are accepted and ignored.
	Lang       string `json:"lang,omitempty"`
	ClientData string `json:"clientData,omitempty"`
	// MaxResults is the CSC v1 parameter, still honoured.
	MaxResults int `json:"maxResults,omitempty"`
}

// ListResponse answers credentials/list.
type ListResponse struct {
	// CredentialIDs are the caller's credentials, oldest first.
	CredentialIDs []string `json:"credentialIDs"`
	// CredentialInfos describe them, when credentialInfo was asked for.
	CredentialInfos []CredentialInfo `json:"credentialInfos,omitempty"`
	// OnlyValid is true when onlyValid was asked for (and honoured).
	OnlyValid bool `json:"onlyValid,omitempty"`
}

// CredentialInfo is one entry of credentialInfos.
type CredentialInfo struct {
	// CredentialID names the credential described.
	CredentialID string `json:"credentialID"`
	InfoResponse
}

// InfoRequest is the body of credentials/info (CSC API v2 section 11.5;
// the fields are its parameters of the same names).
type InfoRequest struct {
	// CredentialID is one of the caller's credentials.
	CredentialID string `json:"credentialID"`
	// Certificates is none, single or chain (default single).
	Certificates string `json:"certificates,omitempty"`
	// CertInfo asks for the certificate's details.
	CertInfo bool `json:"certInfo,omitempty"`
	// AuthInfo asks for the authorisation details (always given).
	AuthInfo bool `json:"authInfo,omitempty"`
	// Lang and ClientData are accepted and ignored.
	Lang       string `json:"lang,omitempty"`
	ClientData string `json:"clientData,omitempty"`
}

// KeyInfo describes a credential's key.
type KeyInfo struct {
	// Status is enabled, or disabled (no PIN set, PIN locked, certificate
	// no longer usable).
	Status string `json:"status"`
	// Algo lists the signAlgo OIDs the key signs with.
	Algo []string `json:"algo,omitempty"`
	// Len is the key's size in bits.
	Len int `json:"len,omitempty"`
	// Curve is the OID of an EC key's curve.
	Curve string `json:"curve,omitempty"`
}

// CertInfo describes a credential's certificate.
type CertInfo struct {
	// Status is valid, expired or revoked.
	Status string `json:"status"`
	// Certificates are base64 DER: the certificate, or the chain.
	Certificates []string `json:"certificates,omitempty"`
	// IssuerDN, SerialNumber (upper-case hex) and SubjectDN name it,
	// ValidFrom and ValidTo (GeneralizedTime) bound it; with certInfo only.
	IssuerDN     string `json:"issuerDN,omitempty"`
	SerialNumber string `json:"serialNumber,omitempty"`
	SubjectDN    string `json:"subjectDN,omitempty"`
	ValidFrom    string `json:"validFrom,omitempty"`
	ValidTo      string `json:"validTo,omitempty"`
}

// AuthInfo is the v2 "auth" object: how the credential is authorised.
type AuthInfo struct {
	// Mode is explicit: the PIN goes to credentials/authorize.
	Mode string `json:"mode"`
	// Expression combines the objects' IDs ("PIN").
	Expression string `json:"expression,omitempty"`
	// Objects are the authentication objects.
	Objects []AuthType `json:"objects,omitempty"`
}

// AuthType describes one authentication object (CSC API v2 section 8.3;
// the fields are its members of the same names).
type AuthType struct {
	Type        string `json:"type"`
	ID          string `json:"id"`
	Format      string `json:"format,omitempty"`
	Label       string `json:"label,omitempty"`
	Description string `json:"description,omitempty"`
}

// PINInfo describes the PIN that activates the credential (the CSC v1
// "PIN" object, kept for v1-era clients; Presence, Format and Label are its
// members of the same names).
type PINInfo struct {
	Presence string `json:"presence"`
	Format   string `json:"format"`
	Label    string `json:"label"`
	// Set and Locked are Thiqa's additions: enrolled, and locked after
	// too many wrong tries.
	Set    bool `json:"set"`
	Locked bool `json:"locked"`
}

// InfoResponse answers credentials/info (CSC API v2 section 11.5; the
// fields are its members of the same names).
type InfoResponse struct {
	Description string    `json:"description,omitempty"`
	Key         KeyInfo   `json:"key"`
	Cert        CertInfo  `json:"cert"`
	Auth        *AuthInfo `json:"auth,omitempty"`
	SCAL        string    `json:"SCAL,omitempty"`
	Multisign   int       `json:"multisign,omitempty"`
	Lang        string    `json:"lang,omitempty"`
	// AuthMode and PIN are the CSC v1 form of Auth.
	AuthMode string   `json:"authMode,omitempty"`
	PIN      *PINInfo `json:"PIN,omitempty"`
}

// checkCertificates validates the certificates parameter.
func checkCertificates(v string) error {
	switch v {
	case "", "none", "single", "chain":
		return nil
	}
	return invalid("Invalid parameter certificates", nil)
}

// list serves credentials/list: the caller's citizen-signing credentials.
func (a *API) list(w http.ResponseWriter, r *http.Request) {
	var req ListRequest
	if r.ContentLength != 0 {
		if err := signing.DecodeJSON(w, r, &req); err != nil {
			a.fail(w, r, signing.ActionList, "", err, nil)
			return
		}
	}
	owner := signing.CitizenOf(r)
	err := checkCertificates(req.Certificates)
	switch {
	case signing.RefuseCredentialScope(r) != nil:
		err = signing.RefuseCredentialScope(r)
	case req.UserID != "":
		err = invalid("userID parameter MUST be null", errors.New("the user is the authenticated caller"))
	case owner == "":
		err = signing.Refuse(signing.ErrNoIdentity, "The caller has no citizen identity")
	}
	if err == nil {
		err = a.s.SyncCredentials(r.Context())
	}
	var list []*signing.CredentialRecord
	if err == nil {
		list, err = a.s.CredentialsOf(r.Context(), signing.OwnerCitizen, owner)
	}
	if err != nil {
		a.fail(w, r, signing.ActionList, "", err, nil)
		return
	}
	// A list of credentials is personal data: the read is recorded.
	if err := a.s.Record(r.Context(), audit.Entry{Actor: owner, Action: signing.ActionList, Object: owner, Outcome: audit.OutcomeSuccess,
		Details: map[string]any{"credentials": len(list)}}); err != nil {
		a.fail(w, r, signing.ActionList, "", fmt.Errorf("%w: %w", signing.ErrAudit, err), nil)
		return
	}
	out := ListResponse{CredentialIDs: []string{}, OnlyValid: req.OnlyValid}
	for _, c := range list {
		if req.MaxResults > 0 && len(out.CredentialIDs) == req.MaxResults {
			break
		}
		if !req.CredentialInfo && !req.OnlyValid {
			out.CredentialIDs = append(out.CredentialIDs, c.ID)
			continue
		}
		info, err := a.credentialEntry(r.Context(), c.ID, owner, req.Certificates, req.CertInfo)
		if errors.Is(err, signing.ErrCredentialRefused) {
			continue // its key is not on the token: neither usable nor describable
		}
		if err != nil {
			a.fail(w, r, signing.ActionList, c.ID, err, nil)
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
	signing.WriteJSON(w, http.StatusOK, out)
}

// credentialEntry describes one of owner's credentials for credentialInfos;
// a credential whose certificate is no longer usable is listed with a
// disabled key and the certificate's status.
func (a *API) credentialEntry(ctx context.Context, id, owner, certificates string, certInfo bool) (CredentialInfo, error) {
	cred, err := a.s.Credential(ctx, id, signing.OwnerCitizen, owner)
	if errors.Is(err, signing.ErrCertificateNotValid) || errors.Is(err, signing.ErrCertificateRevoked) {
		status := "expired"
		if errors.Is(err, signing.ErrCertificateRevoked) {
			status = "revoked"
		}
		return CredentialInfo{CredentialID: id, InfoResponse: InfoResponse{
			Key: KeyInfo{Status: "disabled"}, Cert: CertInfo{Status: status}, Auth: pinAuth()}}, nil
	}
	if err != nil {
		return CredentialInfo{}, err
	}
	info, err := a.credentialInfo(ctx, cred, certificates, certInfo)
	return CredentialInfo{CredentialID: id, InfoResponse: info}, err
}

// info serves credentials/info for one of the caller's credentials.
func (a *API) info(w http.ResponseWriter, r *http.Request) {
	var req InfoRequest
	if err := signing.DecodeJSON(w, r, &req); err != nil {
		a.fail(w, r, signing.ActionInfo, "", err, nil)
		return
	}
	err := signing.RefuseCredentialScope(r)
	var cred *signing.Credential
	if err == nil {
		cred, err = a.credential(r, req.CredentialID)
	}
	if err == nil {
		err = checkCertificates(req.Certificates)
	}
	if err != nil {
		a.fail(w, r, signing.ActionInfo, req.CredentialID, err, nil)
		return
	}
	out, err := a.credentialInfo(r.Context(), cred, req.Certificates, req.CertInfo)
	if err != nil {
		a.fail(w, r, signing.ActionInfo, req.CredentialID, err, nil)
		return
	}
	// Credential information is personal data: the read is recorded.
	if err := a.s.Record(r.Context(), audit.Entry{Actor: signing.CitizenOf(r), Action: signing.ActionInfo, Object: cred.ID(), Outcome: audit.OutcomeSuccess}); err != nil {
		a.fail(w, r, signing.ActionInfo, req.CredentialID, fmt.Errorf("%w: %w", signing.ErrAudit, err), nil)
		return
	}
	signing.WriteJSON(w, http.StatusOK, out)
}

// pinAuth is the v2 auth object of every citizen credential: one PIN.
func pinAuth() *AuthInfo {
	return &AuthInfo{Mode: "explicit", Expression: "PIN", Objects: []AuthType{{
		Type: "Password", ID: "PIN", Format: "A", Label: "Signing PIN",
		Description: "The signing PIN set at enrolment (locked after too many wrong tries)",
	}}}
}

// credentialInfo describes a usable credential (CSC API v2 section 11.5).
func (a *API) credentialInfo(ctx context.Context, cred *signing.Credential, certificates string, certInfo bool) (InfoResponse, error) {
	pinSet, locked, err := a.s.PINStatus(ctx, cred.ID()) // fresh PIN state
	if err != nil {
		return InfoResponse{}, err
	}
	chain := cred.Chain()
	leaf := chain[0]
	out := InfoResponse{
		Description: "Qualified electronic signature key of " + leaf.Subject.CommonName,
		Auth:        pinAuth(), SCAL: "2", Multisign: a.s.Config().MaxHashesPerSAD, Lang: "en",
		AuthMode: "explicit",
		PIN:      &PINInfo{Presence: "true", Format: "A", Label: "Signing PIN", Set: pinSet, Locked: locked},
		Cert:     CertInfo{Status: "valid"}, // signing.Service.Credential refuses expired and revoked certificates
	}
	out.Key.Status = "enabled"
	if locked || !pinSet {
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
		for _, c := range chain {
			out.Cert.Certificates = append(out.Cert.Certificates, base64.StdEncoding.EncodeToString(c.Raw))
		}
	default:
		out.Cert.Certificates = []string{base64.StdEncoding.EncodeToString(leaf.Raw)}
	}
	if certInfo {
		out.Cert.IssuerDN, out.Cert.SubjectDN = distinguishedName(leaf.RawIssuer, leaf.Issuer), distinguishedName(leaf.RawSubject, leaf.Subject)
		out.Cert.SerialNumber = strings.ToUpper(leaf.SerialNumber.Text(16))
		out.Cert.ValidFrom, out.Cert.ValidTo = leaf.NotBefore.UTC().Format("20060102150405Z"), leaf.NotAfter.UTC().Format("20060102150405Z")
	}
	return out, nil
}
