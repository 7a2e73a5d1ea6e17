package bench

import (
	"context"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/thiqa/thiqa/ca"
	"github.com/thiqa/thiqa/identity"
	"github.com/thiqa/thiqa/policies"
	"github.com/thiqa/thiqa/verify"
)

// fakeDeps is a deployment whose folder is folder.
type fakeDeps struct{ folder *Folder }

func (d fakeDeps) Folder(string) (*Folder, error)    { return d.folder, nil }
func (fakeDeps) KeyType(name string) (string, error) { return name, nil }
func (fakeDeps) TrustedLists(context.Context, []string, []string) (verify.TrustedLists, error) {
	return nil, errors.New("none")
}

// fakeToken answers what the generators ask of the token; its Authority
// records the requests it is asked to issue.
type fakeToken struct {
	mu     sync.Mutex
	issued []ca.Request
}

func (*fakeToken) MintToken(context.Context, string, policies.Role, time.Duration) (string, error) {
	return "bench-token", nil
}
func (*fakeToken) Key(_ context.Context, label string) (Key, error) {
	return Key{Label: label, Type: "ec-p256"}, nil
}
func (*fakeToken) TSAUnitKey(context.Context) (Key, error) { return Key{Type: "ec-p256"}, nil }
func (*fakeToken) RawSignRate(context.Context, string, int, time.Duration) (float64, error) {
	return 1000, nil
}
func (*fakeToken) RawSignRateSessionCopy(context.Context, string, int, time.Duration) (float64, error) {
	return 1000, nil
}
func (*fakeToken) Close() error                                                { return nil }
func (*fakeToken) BenchKey(context.Context, string) (Key, error)               { return Key{}, nil }
func (t *fakeToken) Authority(context.Context) (Issuer, error)                 { return t, nil }
func (*fakeToken) EnrolMobileID(context.Context, string, string, string) error { return nil }
func (*fakeToken) AddClient(context.Context, *identity.Client) error           { return nil }
func (*fakeToken) Operator() string                                            { return "tester" }
func (t *fakeToken) Issue(_ context.Context, req ca.Request) (*ca.Issued, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.issued = append(t.issued, req)
	return &ca.Issued{}, nil
}

// folderOf is a data folder of a deployment of country (Folder.Country),
// whose citizen CA certificate names caCountry.
func folderOf(tok *fakeToken, country, caCountry string) *Folder {
	return &Folder{Country: country, CAEnabled: true,
		IssuerKey: func(string) (string, error) { return "citizen-ca", nil },
		CACertificate: func(name string) (*x509.Certificate, error) {
			if name != policies.IssuerCitizen || caCountry == "" {
				return nil, errors.New("no such CA")
			}
			return &x509.Certificate{Subject: pkix.Name{Country: []string{caCountry}, CommonName: "Citizen CA"}}, nil
		},
		OpenToken:    func(context.Context, int) (Token, error) { return tok, nil },
		OpenPlatform: func(context.Context, int) (Platform, error) { return tok, nil },
	}
}

// The load generators issue to the deployment's country: what its
// configuration says, else its citizen CA certificate's subject C, unless
// --country says otherwise; without any, the command line is refused.
func TestSubjectCountry(t *testing.T) {
	tok := &fakeToken{}
	for _, c := range []struct {
		folder  *Folder
		flagged string
		want    string
	}{
		{folderOf(tok, "AE", "QA"), "", "AE"},
		{folderOf(tok, "", "QA"), "", "QA"}, // an offline root: the configuration names none
		{folderOf(tok, "AE", "QA"), "BH", "BH"},
	} {
		if got, err := subjectCountry(c.folder, c.flagged); err != nil || got != c.want {
			t.Errorf("subjectCountry(%q, %q): %q %v, want %q", c.folder.Country, c.flagged, got, err, c.want)
		}
	}
	var ue *UsageError
	if _, err := subjectCountry(folderOf(tok, "", ""), ""); !errors.As(err, &ue) || !strings.Contains(err.Error(), "--country") {
		t.Errorf("no country anywhere: %v, want a usage error naming --country", err)
	}
	if _, err := subjectCountry(folderOf(tok, "AE", ""), "Oman"); !errors.As(err, &ue) {
		t.Errorf("--country Oman: %v, want a usage error", err)
	}
}

// `thiqa bench issue` against a deployment of the United Arab Emirates
// asks for certificates of AE citizens and agencies, and `thiqa bench ocsp
// --prepare` issues to AE citizens: an OM civil number would be refused.
func TestBenchIssuesToTheDeploymentsCountry(t *testing.T) {
	var mu sync.Mutex
	countries := map[string]int{}
	var orgIDs []string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/api/v1/certificates" {
			return // /metrics: nothing to scrape
		}
		var req ca.IssueRequest
		raw, _ := io.ReadAll(r.Body)
		if err := json.Unmarshal(raw, &req); err != nil {
			w.WriteHeader(http.StatusBadRequest)
			return
		}
		mu.Lock()
		countries[req.Subject["country"]]++
		if id := req.Subject["organizationIdentifier"]; id != "" {
			orgIDs = append(orgIDs, id)
		}
		mu.Unlock()
		w.WriteHeader(http.StatusCreated)
		_, _ = io.WriteString(w, `{"serial":"01","certificate":"-----BEGIN CERTIFICATE-----\nMII=\n-----END CERTIFICATE-----\n","chain":[]}`)
	}))
	defer srv.Close()
	tok := &fakeToken{}
	deps := fakeDeps{folderOf(tok, "AE", "AE")}
	for _, profile := range []string{policies.ProfileCitizenSigning, policies.ProfileOrganisationSeal} {
		var out, errb strings.Builder
		if err := Issue(t.Context(), deps, []string{"--data", "d", "--url", srv.URL, "--requests", "3", "--warmup", "1", "--concurrency", "1",
			"--profile", profile, "--raw-duration", "1ms"}, &out, &errb); err != nil {
			t.Fatalf("bench issue %s: %v\n%s", profile, err, errb.String())
		}
		// Its output is what it was before --country: the header unchanged.
		if want := "thiqa bench issue: " + srv.URL + ", profile " + profile + ", 3 requests (+1 warm-up), concurrency 1, GOMAXPROCS="; !strings.HasPrefix(out.String(), want) {
			t.Errorf("bench issue's header changed:\n%s\nwant it to start %q", out.String(), want)
		}
	}
	if countries["AE"] != 8 || len(countries) != 1 {
		t.Errorf("issue requests by country: %v, want 8 of AE", countries)
	}
	for _, id := range orgIDs {
		if !strings.HasPrefix(id, "NTRAE-") {
			t.Errorf("agency organizationIdentifier %s, want one registered in AE", id)
		}
	}

	var out strings.Builder
	if err := OCSP(t.Context(), deps, []string{"--data", "d", "--prepare", "2"}, &out, io.Discard); err != nil {
		t.Fatal(err)
	}
	if len(tok.issued) != 2 {
		t.Fatalf("bench ocsp --prepare issued %d, want 2", len(tok.issued))
	}
	for _, req := range tok.issued {
		if req.Subject["country"] != "AE" {
			t.Errorf("bench ocsp --prepare issued to %s, want AE", req.Subject["country"])
		}
	}
}
