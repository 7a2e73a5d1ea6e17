package ca

import (
	"errors"
	"fmt"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/thiqa/thiqa/policies"
)

// The end of an issuing CA's validity. A certificate never outlives the CA
// that issues it, and every profile has a fixed validity: from the moment
// notAfter(CA) - validity(profile) passes, the CA can issue no certificate
// of that profile at all, new or renewed. The remedy is a new generation of
// the CA (`thiqa ca rollover`, the key ceremony, `thiqa ca import`, a
// restart), from which new certificates are then issued; the metrics below
// tell the operators long before.

// ErrIssuerExpiring matches every *IssuerExpiringError (errors.Is).
var ErrIssuerExpiring = errors.New("issuing CA too close to the end of its validity")

// ProblemIssuerExpiring is the RFC 9457 problem type of an
// *IssuerExpiringError in the CA's HTTP answers (status 500: the service's
// condition, not the caller's fault, and no retry helps until the operators
// roll the CA over).
const ProblemIssuerExpiring = "urn:thiqa:problem:issuing-ca-expiring"

// IssuerExpiringError refuses a certificate that would outlive its issuing
// CA: the CA's current generation expires before a certificate of the
// profile, issued now with its full validity, would. It is the service's
// condition, not the caller's fault (IsRefusal is false), and it lasts
// until the CA is rolled over.
type IssuerExpiringError struct {
	// CA is the issuing CA (citizen); Issuer the generation's issuer name
	// (citizen_2) and Generation its number.
	CA, Issuer string
	Generation int
	// NotAfter is the issuing CA certificate's notAfter.
	NotAfter time.Time
	// Profile is the requested profile and Validity its certificates' lifetime.
	Profile  string
	Validity time.Duration
	// IssuableUntil is the last moment the CA could issue a certificate of
	// the profile with its full validity (in the past by now).
	IssuableUntil time.Time
}

// Error implements the error interface; it says what the operators must do.
func (e *IssuerExpiringError) Error() string {
	return fmt.Sprintf("issuing CA %s (generation %d, %s) expires on %s: a certificate of profile %s (valid %s) issued now would outlive it "+
		"(the last such certificate could be issued until %s); nothing was issued. The CA operators must roll the issuing CA over to a new generation: "+
		"thiqa ca rollover --name %s, then the key ceremony and thiqa ca import (docs/ceremony.md)",
		e.CA, e.Generation, e.Issuer, e.NotAfter.UTC().Format(time.RFC3339), e.Profile, validityText(e.Validity),
		e.IssuableUntil.UTC().Format(time.RFC3339), e.CA)
}

// Is makes errors.Is match ErrIssuerExpiring.
func (e *IssuerExpiringError) Is(target error) bool { return target == ErrIssuerExpiring }

// validityText writes a lifetime in days when it is whole days (730d).
func validityText(d time.Duration) string {
	if d > 0 && d%(24*time.Hour) == 0 {
		return fmt.Sprintf("%dd", d/(24*time.Hour))
	}
	return d.String()
}

// lastNotBefore is the latest notBefore of a certificate of validity v
// that does not outlive the issuer (notAfter is notBefore + v - 1 s,
// inclusive, RFC 5280 §4.1.2.5).
func (i *Issuer) lastNotBefore(v time.Duration) time.Time {
	return i.cert.NotAfter.Add(-v + time.Second)
}

// window is the validity of a certificate of profile p requested with
// notBefore nb: never before the CA itself, whole seconds, and p.Validity
// long (notAfter inclusive).
func (i *Issuer) window(p *policies.Profile, nb time.Time) (notBefore, notAfter time.Time) {
	if nb.Before(i.cert.NotBefore) { // backdating never precedes the CA itself
		nb = i.cert.NotBefore
	}
	nb = nb.UTC().Truncate(time.Second)
	return nb, nb.Add(p.Validity - time.Second)
}

// expiring returns the refusal of a certificate of profile p requested
// with notBefore nb (already backdated by backdate), or nil when it fits in
// the CA's validity.
func (i *Issuer) expiring(p *policies.Profile, nb time.Time, backdate time.Duration) error {
	if _, na := i.window(p, nb); !na.After(i.cert.NotAfter) {
		return nil
	}
	return &IssuerExpiringError{CA: i.ca, Issuer: i.name, Generation: i.generation, NotAfter: i.cert.NotAfter,
		Profile: p.Name, Validity: p.Validity, IssuableUntil: i.lastNotBefore(p.Validity).Add(backdate)}
}

// IssuableUntil returns the last moment the current generation of the
// issuing CA named ca can issue a certificate of profile with the profile's
// full validity; false when the CA is not configured, the profile unknown,
// or the CA may not issue it.
func (a *Authority) IssuableUntil(ca, profile string) (time.Time, bool) {
	is, ok := a.issuers[ca]
	if !ok {
		return time.Time{}, false
	}
	p, err := a.profiles.Get(profile)
	if err != nil || !p.AllowsIssuer(ca) {
		return time.Time{}, false
	}
	return is.lastNotBefore(p.Validity).Add(a.backdate), true
}

// expiryCollectors are the gauges of the CAs' validity:
// thiqa_ca_certificate_not_after_seconds{ca, issuer} for the root
// (ca="root") and every issuing CA generation, and
// thiqa_ca_issuable_until_seconds{ca, issuer, profile} for the current
// generation of each issuing CA and each profile it issues (IssuableUntil).
func (a *Authority) expiryCollectors() []prometheus.Collector {
	notAfter := func(ca, issuer string, t time.Time) prometheus.Collector {
		return prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "thiqa_ca_certificate_not_after_seconds",
			Help:        "NotAfter (Unix time) of a CA certificate: the root (ca=\"root\") and every generation (issuer) of each issuing CA.",
			ConstLabels: prometheus.Labels{"ca": ca, "issuer": issuer}}, func() float64 { return float64(t.Unix()) })
	}
	out := []prometheus.Collector{notAfter("root", "root", a.root.NotAfter)}
	for _, is := range a.byName {
		out = append(out, notAfter(is.ca, is.name, is.cert.NotAfter))
	}
	for caName, is := range a.issuers {
		for _, name := range a.profiles.Names() {
			until, ok := a.IssuableUntil(caName, name)
			if !ok {
				continue
			}
			out = append(out, prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "thiqa_ca_issuable_until_seconds",
				Help: "Last moment (Unix time) the current generation (issuer) of an issuing CA can issue a certificate of the profile " +
					"with its full validity; after it every issuance and renewal of the profile fails until the CA is rolled over.",
				ConstLabels: prometheus.Labels{"ca": caName, "issuer": is.name, "profile": name}}, func() float64 { return float64(until.Unix()) }))
		}
	}
	return out
}
