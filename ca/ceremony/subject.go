package ceremony

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/thiqa/thiqa/policies"
)

// RootSubject is the root's distinguished name as a subject file gives it
// (`thiqa ca root create --subject-file`).
type RootSubject struct {
	CommonName             string `json:"commonName"`
	OrganizationName       string `json:"organizationName"`
	OrganizationIdentifier string `json:"organizationIdentifier"`
	Country                string `json:"country"`
}

// ParseRootSubject reads a subject file strictly: a JSON object with no
// other fields, a commonName and an ISO 3166 country.
func ParseRootSubject(raw []byte) (RootSubject, error) {
	var s RootSubject
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&s); err != nil {
		return RootSubject{}, fmt.Errorf("want a JSON object with commonName, organizationName, organizationIdentifier and country: %w", err)
	}
	if s.CommonName == "" || !policies.IsCountryCode(s.Country) {
		return RootSubject{}, errors.New("commonName and an ISO 3166 country are required")
	}
	return s, nil
}

// ErrRootKeyType refuses a key type a root is not made with.
var ErrRootKeyType = errors.New("want ec-p384 or rsa4096")

// ParseRootKeyType maps the name of a root key type (ec-p384, rsa4096 or
// rsa-4096) to the token's name of it (RootRequest.KeyType); any other is
// ErrRootKeyType.
func ParseRootKeyType(s string) (string, error) {
	switch s {
	case "ec-p384":
		return "ec-p384", nil
	case "rsa4096", "rsa-4096":
		return "rsa-4096", nil
	}
	return "", ErrRootKeyType
}
