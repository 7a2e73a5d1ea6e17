package verify

import (
	"github.com/thiqa/thiqa/verify/pdf"
)

// checkModifications classifies the incremental updates after revision rev.
func (v *Verifier) checkModifications(dc *docContext, s *pdf.SigField, rev int, st sigState) {
}
