package signing

import (
	"bytes"
	"context"
	"crypto"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"time"
)

// Signature activation data (SAD): a one-time authorisation of one
// credential for exact hashes, issued after the citizen's PIN was checked
// (CSC credentials/authorize) and consumed by the signature it authorises
// (CSC signatures/signHash, POST /api/v1/sign/complete).

// hashOIDs are the hash algorithms a SAD may authorise, by OID.
var hashOIDs = map[string]crypto.Hash{
	"2.16.840.1.101.3.4.2.1": crypto.SHA256,
	"2.16.840.1.101.3.4.2.2": crypto.SHA384,
	"2.16.840.1.101.3.4.2.3": crypto.SHA512,
}

// HashOID returns the OID of SHA-256, SHA-384 or SHA-512 ("" for others).
func HashOID(h crypto.Hash) string {
	for oid, x := range hashOIDs {
		if x == h {
			return oid
		}
	}
	return ""
}

// HashByOID returns the hash algorithm of a SHA-256, SHA-384 or SHA-512 OID.
func HashByOID(oid string) (crypto.Hash, bool) {
	h, ok := hashOIDs[oid]
	return h, ok
}

// dtbsHash names the digest algorithm of a DTBS by its length.
func dtbsHash(dtbs []byte) crypto.Hash {
	switch len(dtbs) {
	case 48:
		return crypto.SHA384
	case 64:
		return crypto.SHA512
	}
	return crypto.SHA256
}

// CheckSAD checks that every hash (made with the algorithm of OID alg) was
// authorised by sad, each authorised hash serving once; otherwise the
// error is a *SADError.
func CheckSAD(sad *SAD, alg string, hashes [][]byte) error {
	if sad.HashAlg != alg {
		return &SADError{Reason: "the SAD authorised another hash algorithm"}
	}
	if len(hashes) > sad.NumSignatures {
		return &SADError{Reason: fmt.Sprintf("the SAD authorised %d signatures, %d asked", sad.NumSignatures, len(hashes))}
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
		return &SADError{Reason: fmt.Sprintf("hashes[%d] was not authorised by the SAD", i)}
	}
	return nil
}

// IssueSAD records an authorisation of cred for exactly hashes (made with
// h), usable once within Config.SADLifetime, and returns the SAD value and
// its expiry. The caller has checked the PIN.
func (s *Service) IssueSAD(ctx context.Context, cred *Credential, h crypto.Hash, hashes [][]byte) (string, time.Time, error) {
	var raw [32]byte
	if _, err := rand.Read(raw[:]); err != nil {
		return "", time.Time{}, err
	}
	sad := base64.RawURLEncoding.EncodeToString(raw[:])
	exp := s.now().Add(s.cfg.SADLifetime)
	if err := s.store.InsertSAD(ctx, sad, SAD{CredentialID: cred.rec.ID, HashAlg: HashOID(h), Hashes: hashes,
		NumSignatures: len(hashes), ExpiresAt: exp}); err != nil {
		return "", time.Time{}, err
	}
	return sad, exp, nil
}

// ConsumeSAD spends sad for credential credID and returns what it
// authorised; ErrSADInvalid when it is unknown, expired, already used or
// for another credential.
func (s *Service) ConsumeSAD(ctx context.Context, sad, credID string) (*SAD, error) {
	got, err := s.store.ConsumeSAD(ctx, sad, credID, s.now())
	if errors.Is(err, ErrNotFound) {
		return nil, ErrSADInvalid
	}
	return got, err
}
