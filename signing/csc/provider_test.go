package csc

import (
	"crypto"
	"errors"
	"testing"

	"github.com/thiqa/thiqa/identity"
	"github.com/thiqa/thiqa/internal/pin"
	"github.com/thiqa/thiqa/signing"
)

var _ identity.SigningCredentials = ProviderCredentials{}

// TestProviderErr: the signing service's refusals become the provider's
// sentinels with the reason kept; failures pass unchanged.
func TestProviderErr(t *testing.T) {
	failure := errors.New("database down")
	for _, tc := range []struct {
		err, want error
	}{
		{pin.ErrLocked, identity.ErrPINLocked},
		{pin.ErrWrong, identity.ErrWrongPIN},
		{signing.ErrCredentialRefused, identity.ErrCredentialUnusable},
		{pin.ErrNotSet, identity.ErrCredentialUnusable},
		{failure, failure},
	} {
		got := providerErr(tc.err)
		if !errors.Is(got, tc.want) || !errors.Is(got, tc.err) {
			t.Errorf("%v: got %v, want %v", tc.err, got, tc.want)
		}
	}
	if providerErr(nil) != nil {
		t.Error("nil is no refusal")
	}
}

func TestProviderAuthorization(t *testing.T) {
	req := &identity.CredentialRequest{CredentialID: "cred-1", HashAlgorithmOID: "2.16.840.1.101.3.4.2.2", Hashes: [][]byte{{1}}}
	az, err := providerAuthorization("123", "client-1", req)
	if err != nil || az.Hash != crypto.SHA384 || az.Citizen != "123" || az.Client != "client-1" || az.CredentialID != "cred-1" || len(az.Hashes) != 1 {
		t.Fatalf("%+v %v", az, err)
	}
	req.HashAlgorithmOID = "1.3.14.3.2.26" // SHA-1
	if _, err := providerAuthorization("123", "client-1", req); !errors.Is(err, identity.ErrCredentialUnusable) {
		t.Fatalf("SHA-1: %v", err)
	}
}
