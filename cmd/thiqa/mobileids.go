package main

import (
	"context"
	"errors"
	"fmt"

	"github.com/thiqa/thiqa/identity"
	"github.com/thiqa/thiqa/signing"
	"github.com/thiqa/thiqa/store"
)

// mobileIDs adapts the identity store's mobile-ID enrolments to the
// signing service's credential endpoints (signing.MobileIDs): the PIN life
// cycle and the listing of a citizen's credentials cover mobile IDs too.
type mobileIDs struct{ ids *store.Identity }

// MobileID returns an enrolled mobile ID (signing.ErrNotFound otherwise).
func (m mobileIDs) MobileID(ctx context.Context, id string) (*signing.MobileID, error) {
	st, err := m.ids.MobileID(ctx, id)
	if errors.Is(err, identity.ErrNotFound) {
		return nil, fmt.Errorf("%w: %w", signing.ErrNotFound, err)
	}
	if err != nil {
		return nil, err
	}
	out := mobileIDOf(*st)
	return &out, nil
}

// MobileIDsOf lists a citizen's enrolled mobile IDs.
func (m mobileIDs) MobileIDsOf(ctx context.Context, civil string) ([]signing.MobileID, error) {
	sts, err := m.ids.MobileIDsOf(ctx, civil)
	if err != nil {
		return nil, err
	}
	out := make([]signing.MobileID, len(sts))
	for i, st := range sts {
		out[i] = mobileIDOf(st)
	}
	return out, nil
}

func mobileIDOf(st store.MobileIDState) signing.MobileID {
	return signing.MobileID{CredentialID: st.CredentialID, CivilNumber: st.CivilNumber, CertSerial: st.CertSerial, NotAfter: st.NotAfter,
		Revoked: st.Revoked, PINSet: st.PINSet, PINFailures: st.PINFailures, ActivationPending: st.ActivationPending}
}
