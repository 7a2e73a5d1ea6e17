package build

import (
	"crypto/x509"
	"slices"

	"github.com/thiqa/thiqa/policies"
	"github.com/thiqa/thiqa/verify/tsl"
)

// Deployment is what this deployment's own list describes.
type Deployment struct {
	// Root is the root CA's certificate: its country is the territory.
	Root *x509.Certificate
	// Issuers are the issuing CAs in their configured order.
	Issuers []IssuingCA
	// TSACA names the issuing CA that certifies the time-stamping units,
	// "" when the deployment runs no TSA.
	TSACA string
	// Profiles are the certificate profiles: an issuing CA is listed as a
	// qualified service when a profile it issues makes qualified
	// certificates for signatures or seals.
	Profiles *policies.ProfileSet
}

// IssuingCA is one issuing CA and the certificates of its generations:
// the first one, then each key it was rolled over to.
type IssuingCA struct {
	Name        string
	Generations []*x509.Certificate
}

// DeploymentServices lists the deployment's qualified services: a CA/QC
// service for each generation of each issuing CA that issues qualified
// certificates (its additional service information from the profiles' QC
// types) and a TSA/QTST service for each generation of the TSA's issuing
// CA, whose identity it is (so that renewing a unit certificate needs no
// new list). The territory is the root CA's country.
func DeploymentServices(d Deployment) (services []Service, territory string) {
	if len(d.Root.Subject.Country) > 0 {
		territory = d.Root.Subject.Country[0]
	}
	for _, is := range d.Issuers {
		if d.TSACA != "" && is.Name == d.TSACA {
			for _, c := range is.Generations {
				services = append(services, Service{Type: tsl.SvcTypeTSAQTST, Name: c.Subject.CommonName + " time-stamping",
					Certificates: []*x509.Certificate{c}, Status: tsl.StatusGranted, Since: c.NotBefore})
			}
			continue
		}
		asi := additionalInfo(d.Profiles, is.Name)
		if len(asi) == 0 {
			continue // issues no qualified certificates for signatures or seals
		}
		for _, c := range is.Generations {
			services = append(services, Service{Type: tsl.SvcTypeCAQC, Name: c.Subject.CommonName, Certificates: []*x509.Certificate{c},
				Status: tsl.StatusGranted, Since: c.NotBefore, AdditionalInfo: asi})
		}
	}
	return services, territory
}

// additionalInfo returns the additional service information URIs (for
// e-signatures, for e-seals) of the qualified profiles the CA issuer
// issues, sorted.
func additionalInfo(profiles *policies.ProfileSet, issuer string) []string {
	var asi []string
	for _, name := range profiles.Names() {
		pr, err := profiles.Get(name)
		if err != nil || !pr.QC.Compliance || !slices.Contains(pr.Issuers, issuer) {
			continue
		}
		for _, t := range pr.QC.Types {
			u := map[string]string{policies.OIDQcTypeESign: tsl.ASiForeSignatures, policies.OIDQcTypeESeal: tsl.ASiForeSeals}[t.String()]
			if u != "" && !slices.Contains(asi, u) {
				asi = append(asi, u)
			}
		}
	}
	slices.Sort(asi)
	return asi
}

// NextSequence is one more than the sequence number of the list raw (read
// without checking its signature: only the number is taken), else 1.
func NextSequence(raw []byte) int {
	if res := tsl.Check(raw, tsl.CheckOptions{}); res.List != nil {
		return res.List.SequenceNumber + 1
	}
	return 1
}
