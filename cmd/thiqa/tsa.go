package main

import (
	"context"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"math/big"

	"github.com/thiqa/thiqa/ca"
	"github.com/thiqa/thiqa/ca/ocsp"
	"github.com/thiqa/thiqa/ca/revocation"
	"github.com/thiqa/thiqa/cmd/thiqa/internal/config"
	"github.com/thiqa/thiqa/hsm"
	"github.com/thiqa/thiqa/hsm/keyring"
	"github.com/thiqa/thiqa/internal/auth"
	"github.com/thiqa/thiqa/store"
	"github.com/thiqa/thiqa/timestamp"
	"github.com/thiqa/thiqa/timestamp/clock"
)

// tsaUnits finds the TSA units in the data folder and on the token; ca
// certifies new unit keys (nil where none are made).
func tsaUnits(cfg *config.Config, keys keyring.Ring, ca timestamp.Certifier) (*timestamp.Units, error) {
	label, err := cfg.HSM.KeyLabel(cfg.TSA.Key)
	if err != nil {
		return nil, err
	}
	kt, err := hsm.ParseKeyType(cfg.TSA.KeyTypeOrDefault())
	if err != nil {
		return nil, err
	}
	keys.KeyType = kt
	return &timestamp.Units{Dir: cfg.Resolve(cfg.TSA.CertDir), KeyLabel: label, Keys: keys, CA: ca}, nil
}

// unitCertifier has the CA certify TSA unit keys (ca.UnitCertifier) with
// the configured subject; the CA is opened on first use.
func unitCertifier(p *platform) *ca.UnitCertifier {
	return &ca.UnitCertifier{Open: func(ctx context.Context) (*ca.Authority, error) { return openAuthority(ctx, p, nil) },
		CA: p.cfg.TSA.CAOrDefault(), Subject: p.cfg.TSA.UnitSubject()}
}

// initTSA makes sure the TSA unit key exists on the token and has its
// tsa-unit certificate from the tsa CA in the data folder. What exists is
// kept.
func initTSA(ctx context.Context, p *platform, out io.Writer) error {
	if !p.cfg.TSA.Enabled() {
		return nil
	}
	units, err := tsaUnits(p.cfg, keyring.Ring{Token: p.token, Audit: p.audit}, unitCertifier(p))
	if err != nil {
		return err
	}
	unit, err := units.Init(ctx, "thiqa-init")
	if err != nil {
		return err
	}
	fmt.Fprintf(out, "  TSA unit          %s  %s\n", unit.Key.URI, units.UnitPath())
	return nil
}

// wireTSA builds the TSA service (POST /tsa, public: the requester is the
// authenticated caller when credentials come along, else the remote
// address), mounts it, adds it to /readyz and keeps the unit renewed in the
// background.
func wireTSA(ctx context.Context, p *platform, sv *serving) error {
	cfg := p.cfg
	if !cfg.TSA.Enabled() {
		return nil
	}
	logger := p.logger.With("service", "tsa")
	units, err := tsaUnits(cfg, keyring.Ring{Token: p.token, Audit: p.audit, Actor: "thiqa-serve"}, unitCertifier(p))
	if err != nil {
		return err
	}
	clk, err := clock.FromConfig(cfg.TSA.Timestamp, logger)
	if err != nil {
		return err
	}
	svc, err := timestamp.NewServiceFromConfig(ctx, cfg.TSA, p.db.SerialBlocks(), timestamp.ServiceOptions{
		Units: units, Clock: clk, Audit: p.audit, ClockRecords: p.db, Identify: auth.Requester(p.authn), Actor: "thiqa-serve", Logger: logger, Registerer: p.reg,
		Renewals: p.db.TSAUnitRenewals(), Status: unitStatus{rs: p.db.Revocations(), ca: cfg.TSA.CAOrDefault()},
		// A unit whose issuing CA the root CRL revokes stops: the root
		// CRL this node applied last says (wireRootCRL, openAuthority).
		Issuers: p.revokedCAs,
	})
	if errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("%w: run `thiqa init --data %s`", err, cfg.Dir())
	}
	if err != nil {
		return err
	}
	if sv.revocations != nil {
		// A revoked unit stops signing on every node within about a
		// second (the poller), and is renewed with a new key at once. The
		// store keys certificates by serial alone: the serial says it.
		sv.revocations.Watch(func(_ context.Context, r revocation.Revocation) {
			if serial, ok := new(big.Int).SetString(r.Serial, 16); ok {
				svc.Revoked(serial)
			}
		})
	}
	svc.Register(sv.mux, sv.handleRaw)
	sv.ready["tsa"] = svc.Ready
	sv.background = append(sv.background, func(ctx context.Context) { svc.RenewLoop(ctx, cfg.TSA.RenewCheckEvery()) })
	sv.tsa = svc // the signing service time-stamps in process
	// The serial allocator stops before the store closes (closers run first).
	sv.closers = append(sv.closers, svc.Close)
	return nil
}

// unitStatus reads the revocation of TSA unit certificates, issued by the
// CA named ca, from the store (timestamp.UnitStatus).
type unitStatus struct {
	rs *store.Revocations
	ca string
}

// UnitRevoked reports whether cert was revoked; an error when the store
// does not know it as issued by the TSA's CA.
func (u unitStatus) UnitRevoked(ctx context.Context, cert *x509.Certificate) (bool, error) {
	st, err := u.rs.Status(ctx, u.ca, cert.SerialNumber)
	if err != nil {
		return false, err
	}
	switch st.State {
	case ocsp.Good:
		return false, nil
	case ocsp.Revoked:
		return true, nil
	default:
		return false, fmt.Errorf("the store knows no TSA unit certificate with serial %s issued by CA %s", store.SerialKey(cert.SerialNumber), u.ca)
	}
}
