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
	// Agreeing lists the certificate files of the CA's other generations
	// whose C is Configured: the generations disagree among themselves
	// (the country in thiqa.yaml was changed before a rollover), and
	// editing thiqa.yaml cannot make them all agree.
	Agreeing []string
}

// String says the mismatch and what to do, on one line.
func (m CountryMismatch) String() string {
	certified := "no C"
	if len(m.Certified) > 0 {
		certified = "C=" + strings.Join(m.Certified, ",")
	}
	if len(m.Agreeing) > 0 {
		return fmt.Sprintf("thiqa.yaml gives CA %s the country %s, as its certificate(s) %s do, but its certificate %s names %s: "+
			"the CA's generations disagree (was its country in thiqa.yaml changed before thiqa ca rollover?), and editing thiqa.yaml "+
			"cannot make them agree; the deployment takes %s as its country (the civil numbers it accepts, the country its citizen "+
			"profiles issue to), so the holders of what %s certified are not its citizens",
			m.CA, m.Configured, strings.Join(m.Agreeing, ", "), m.Path, certified, m.Configured, m.Path)
	}
	if len(m.Certified) == 0 {
		// A root that leaves C out (a foreign root the country adopted):
		// removing the country from thiqa.yaml would take it from the
		// deployment and from the CSRs of the CA's next generations.
		return fmt.Sprintf("thiqa.yaml gives CA %s the country %s, but its certificate %s names no C (its root left it out): the deployment "+
			"takes %s as its country from thiqa.yaml alone (the civil numbers it accepts, the country its citizen profiles issue to); "+
			"keep it there as the CA's CSRs asked for it, and check that it is the country the root certified the CA for",
			m.CA, m.Configured, m.Path, m.Configured)
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
// checks report those) are skipped. When some generations agree and
// others do not, each mismatch names those that agree (Agreeing): its
// String then says that thiqa.yaml cannot fix it, instead of advising an
// edit that would make the agreeing generations disagree.
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
	var agreeing []string
	for n := 1; ; n++ {
		path := CertPath(c.CertDir, GenerationName(name, n))
		raw, err := os.ReadFile(path)
		if err != nil {
			break
		}
		cert, err := pemcert.Parse(raw)
		if err != nil {
			continue
		}
		if !slices.Equal(cert.Subject.Country, []string{c.Country}) {
			out = append(out, CountryMismatch{CA: name, Path: path, Configured: c.Country, Certified: cert.Subject.Country})
		} else {
			agreeing = append(agreeing, path)
		}
	}
	for i := range out {
		out[i].Agreeing = agreeing
	}
	return out
}
