package store_test

import (
	"testing"

	"github.com/thiqa/thiqa/store/storetest"
)

// The store narrows a search by the subject's text, case-insensitively,
// LIKE's wildcards in a term are literal.
func TestSearchCertificates(t *testing.T) {
	for _, d := range storetest.Dialects() {
		t.Run(d.Name, func(t *testing.T) {
			ctx := ctxT(t)
			db := storetest.Open(t, d.NewConfig(t))
			certs := db.Certificates(nil)
			a := newAuthority(t, certs)
			var serials []string
			for _, civil := range []string{"12345678", "87654321"} {
				req := citizenRequest(t)
				req.Subject["civilNumber"] = civil
				got, err := a.Issue(ctx, req)
				if err != nil {
					t.Fatal(err)
				}
				serials = append(serials, got.Serial)
			}
			got, err := certs.SearchCertificates(ctx, []string{"-12345678"}, 10)
			if err != nil || len(got) != 1 || got[0].Serial != serials[0] {
				t.Fatalf("by civil number: %v %+v", err, got)
			}
			got, err = certs.SearchCertificates(ctx, []string{"AISHA al"}, 10)
			if err != nil || len(got) != 2 {
				t.Fatalf("by name: %v %d", err, len(got))
			}
			if got, err := certs.SearchCertificates(ctx, []string{"aisha", "%"}, 10); err != nil || len(got) != 0 {
				t.Fatalf("a literal %%: %v %d", err, len(got))
			}
			if got, err := certs.SearchCertificates(ctx, []string{"aisha"}, 1); err != nil || len(got) != 1 {
				t.Fatalf("limit: %v %d", err, len(got))
			}
		})
	}
}
