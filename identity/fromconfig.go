package identity

import "github.com/thiqa/thiqa/internal/pin"

// Apply returns cfg with the settings of section c: the issuer
// (publicBaseURL when c names none), the lifetimes and the acr claim.
func (c ProviderConfig) Apply(cfg Config, publicBaseURL string) Config {
	cfg.Issuer = c.IssuerOr(publicBaseURL)
	cfg.CodeLifetime, cfg.LoginLifetime, cfg.IDTokenLifetime = c.CodeLifetime, c.LoginLifetime, c.IDTokenLifetime
	cfg.AccessTokenLifetime, cfg.MaxAssertionLifetime, cfg.ACR = c.AccessTokenLifetime, c.MaxAssertionLifetime, c.ACR
	return cfg
}

// PINs returns the manager of the login PINs of mobile IDs kept in store,
// at c's cost and policy (PINParams).
func (c ProviderConfig) PINs(store pin.Store) (*pin.Manager, error) {
	return pin.New(store, c.PINParams())
}
