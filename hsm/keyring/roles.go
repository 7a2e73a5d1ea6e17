package keyring

import (
	"strconv"
	"strings"
)

// Values of the HSM metrics' "key" label for keys that are not one of the
// service keys the configuration names.
const (
	// RoleCredential counts every subject key (a citizen's or an agency's
	// credential) until its service names its profile.
	RoleCredential = "credential"
	// RoleOther counts any other key on the token.
	RoleOther = "other"
)

// Roles maps a key's label on the token to the value of the HSM metrics'
// "key" label: the key's role (ca-citizen, ocsp-citizen, tsa-unit, …),
// never the label of a subject's key, which is a credential ID. The set of
// values is fixed by the deployment, so it does not grow with the number
// of citizens.
type Roles struct {
	// Keys maps the labels of the keys the configuration names to their
	// roles (ca-citizen, audit-checkpoint, …).
	Keys map[string]string
	// CAKeys maps the labels of the issuing CAs' keys to their roles: a
	// later generation's key (citizen-ca-2) counts as its CA's.
	CAKeys map[string]string
	// TSAUnit is the base label of the TSA unit keys ("" for none): it and
	// the rotated keys labelled TSAUnit-… are tsa-unit.
	TSAUnit string
	// Responders are the CAs whose OCSP responder keys (ocsp-<ca>-…, and
	// ocsp-<ca>_<generation>-…) are ocsp-<ca>.
	Responders []string
}

// Role returns the role of the key labelled label.
func (r Roles) Role(label string) string {
	if role, ok := r.Keys[label]; ok {
		return role
	}
	switch {
	case strings.HasPrefix(label, CredentialPrefix):
		return RoleCredential
	case r.TSAUnit != "" && (label == r.TSAUnit || strings.HasPrefix(label, r.TSAUnit+"-")):
		return "tsa-unit"
	}
	for _, ca := range r.Responders {
		if strings.HasPrefix(label, "ocsp-"+ca+"-") || strings.HasPrefix(label, "ocsp-"+ca+"_") { // citizen_2's responder counts as citizen's
			return "ocsp-" + ca
		}
	}
	if i := strings.LastIndexByte(label, '-'); i > 0 {
		if _, err := strconv.Atoi(label[i+1:]); err == nil && r.CAKeys[label[:i]] != "" {
			return r.CAKeys[label[:i]] // a later generation's key (citizen-ca-2) counts as its CA's
		}
	}
	return RoleOther
}
