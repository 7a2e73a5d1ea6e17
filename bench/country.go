package bench

import (
	"errors"
	"flag"
	"fmt"
	"strings"

	"github.com/thiqa/thiqa/policies"
)

// countryFlag adds --country to fs: the country of the subjects the
// generator has issued, by default the deployment's (subjectCountry).
func countryFlag(fs *flag.FlagSet) *string {
	return fs.String("country", "", "ISO 3166 country code of the benchmark citizens and agencies (default: the deployment's, the subject C of its citizen CA)")
}

// subjectCountry is the country of the subjects a generator has issued
// for the deployment folder describes: flagged (--country) when set, else
// the deployment's (Folder.Country), else the subject C of its citizen CA
// certificate. A deployment whose citizen CA is not of a country refuses
// (or ignores) the civil numbers of another by default: a hard-coded
// country would measure refusals.
func subjectCountry(folder *Folder, flagged string) (string, error) {
	if flagged != "" {
		if !policies.IsCountryCode(flagged) {
			return "", usage(fmt.Errorf("--country %q is not an ISO 3166 alpha-2 country code", flagged))
		}
		return flagged, nil
	}
	if folder.Country != "" {
		return folder.Country, nil
	}
	if folder.CACertificate != nil {
		if c, err := folder.CACertificate(policies.IssuerCitizen); err == nil && len(c.Subject.Country) > 0 && policies.IsCountryCode(c.Subject.Country[0]) {
			return c.Subject.Country[0], nil
		}
	}
	return "", usage(errors.New("the data folder names no country (no citizen CA certificate with a subject C): give --country"))
}

// orgIdentifier is an EN 319 412-1 organizationIdentifier of a benchmark
// agency registered in country: NTR<country>-<number>.
func orgIdentifier(country string, number int) string {
	return fmt.Sprintf("NTR%s-%d", strings.ToUpper(country), number)
}
