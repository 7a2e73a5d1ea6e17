package hierarchy

import (
	"fmt"
	"os"
	"slices"
	"strings"

	"github.com/thiqa/thiqa/internal/pemcert"
	"github.com/thiqa/thiqa/policies"
)

// CountryMismatch is an installed certificate of the CA the deployment
// takes its country from whose subject C is not that country.
type CountryMismatch struct {
	// CA is the CA's name in the configuration (citizen, or root).
	CA string
	// Path is the certificate file (one generation of the CA).
	Path string
	// Configured is the deployment's country (Config.Country, from
	// thiqa.yaml); Certified the certificate's subject C values.
	Configured string
	Certified  []string
}

// String says the mismatch and what to do, on one line.
func (m CountryMismatch) String() string {
	certified := "no C"
	if len(m.Certified) > 0 {
		certified = "C=" + strings.Join(m.Certified, ",")
	}
	return fmt.Sprintf("thiqa.yaml gives CA %s the country %s, but its certificate %s names %s: the deployment takes %s as its country "+
		"(the civil numbers it accepts, the country its citizen profiles issue to); make the CA's country in thiqa.yaml the certificate's C",
		m.CA, m.Configured, m.Path, certified, m.Configured)
}

// CountryMismatches compares the deployment's country (c.Country, the
// configured country of its citizen CA, else of its root) with the
// subject C of that CA's installed certificates, every generation: nothing
// else does, and a configuration edited after the CA was certified would
// make the deployment accept another country's civil numbers than its
// certificates say. For a warning only: the certificate is what relying
// parties see, the configuration what the deployment checks, and an
// operator must still be able to run the other commands to fix it. Files
// not there (no CA made yet, an offline root's) or unreadable (other
// checks report those) are skipped.
func CountryMismatches(c Config) []CountryMismatch {
	if c.Country == "" {
		return nil
	}
	name := ""
	for _, is := range c.Issuers {
		if is.Name == policies.IssuerCitizen && is.Country == c.Country {
			name = is.Name
		}
	}
	if name == "" && !c.RootOffline && c.Root.Country == c.Country {
		name = c.Root.Name
	}
	if name == "" {
		return nil
	}
	var out []CountryMismatch
	for n := 1; ; n++ {
		path := CertPath(c.CertDir, GenerationName(name, n))
		raw, err := os.ReadFile(path)
		if err != nil {
			return out
		}
		cert, err := pemcert.Parse(raw)
		if err != nil {
			continue
		}
		if !slices.Equal(cert.Subject.Country, []string{c.Country}) {
			out = append(out, CountryMismatch{CA: name, Path: path, Configured: c.Country, Certified: cert.Subject.Country})
		}
	}
}
