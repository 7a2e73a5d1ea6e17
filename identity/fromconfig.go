package identity

import "github.com/thiqa/thiqa/internal/pin"

// Apply returns cfg with the settings of section c: the issuer
// (publicBaseURL when c names none), the lifetimes, the acr claim, number
// matching and the per-client-IP rate limits.
func (c ProviderConfig) Apply(cfg Config, publicBaseURL string) Config {
	cfg.Issuer = c.IssuerOr(publicBaseURL)
	cfg.NumberMatching = c.Mobile.NumberMatching
	cfg.LoginRate, cfg.LoginBurst = c.RateLimit.Login.RatePerSecond, c.RateLimit.Login.Burst
	cfg.TokenRate, cfg.TokenBurst = c.RateLimit.Token.RatePerSecond, c.RateLimit.Token.Burst
	cfg.CodeLifetime, cfg.LoginLifetime, cfg.IDTokenLifetime = c.CodeLifetime, c.LoginLifetime, c.IDTokenLifetime
	cfg.AccessTokenLifetime, cfg.MaxAssertionLifetime, cfg.ACR = c.AccessTokenLifetime, c.MaxAssertionLifetime, c.ACR
	return cfg
}

// PINs returns the manager of the login PINs of mobile IDs kept in store,
// at c's cost and policy (PINParams).
func (c ProviderConfig) PINs(store pin.Store) (*pin.Manager, error) {
	return pin.New(store, c.PINParams())
}

// EnrolmentStore is the store a mobile-ID enrolment reads and writes: the
// issued credentials, the enrolments and the login PINs (package store
// implements it).
type EnrolmentStore interface {
	Credentials
	MobileIDStore
	pin.Store
}

// Enrolment returns what EnrolMobileID and EnrolMobileIDForActivation need
// over store, with the login PINs at c's cost and policy (PINs), status
// checking the credentials' certificates and audit recording the
// enrolments.
func (c ProviderConfig) Enrolment(store EnrolmentStore, status StatusChecker, audit Preparer) (Enrolment, error) {
	pins, err := c.PINs(store)
	if err != nil {
		return Enrolment{}, err
	}
	return Enrolment{Credentials: store, Status: status, Store: store, PINs: pins, Audit: audit}, nil
}
