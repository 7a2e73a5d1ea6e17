package signing_test

import (
	"bytes"
	"context"
	"crypto/x509"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/thiqa/thiqa/policies"
	"github.com/thiqa/thiqa/signer"
	"github.com/thiqa/thiqa/signing"
	"github.com/thiqa/thiqa/store/storetest"
)

// fakeIssuers revokes every issuing CA while on is set (what
// *ca.RevokedIssuers says once the root CRL lists the CA).
type fakeIssuers struct{ on atomic.Bool }

var errFakeIssuerRevoked = errors.New("issuing CA revoked by the root (test)")

func (f *fakeIssuers) RevokedIssuerOf(cert *x509.Certificate) error {
	if f.on.Load() && cert != nil {
		return errFakeIssuerRevoked
	}
	return nil
}

// TestIssuerRevokedCredentialSignsNothing on SQLite and PostgreSQL, keys
// on SoftHSM: once the root revokes the issuing CA of a credential's
// certificate (signing.Options.IssuerRevocations), the credential seals
// and signs nothing (seal, batch, operator seal, sign, CSC authorize),
// each refusal answered as for a revoked certificate and audited as
// refused, and GET /api/v1/credentials?owner=self lists it as revoked.
// The service signed with such credentials and listed them as valid.
func TestIssuerRevokedCredentialSignsNothing(t *testing.T) {
	for _, d := range storetest.Dialects() {
		t.Run(d.Name, func(t *testing.T) {
			issuers := &fakeIssuers{}
			w := newWorld(t, d, worldOptions{issuers: issuers})
			ctx := context.Background()
			agency := w.token(t, "NTROM-1234567", policies.RoleAgency)
			citizen := w.token(t, "12345678", policies.RoleCitizen)
			seal, _ := w.credential(t, policies.ProfileOrganisationSeal, orgSubject())
			sign, _ := w.credential(t, policies.ProfileCitizenSigning, citizenSubject())
			if code, m := w.csc(t, "/api/v1/credentials/"+sign+"/pin", citizen, signing.PINRequest{PIN: testPIN}); code != 201 {
				t.Fatalf("set PIN: %d %v", code, m)
			}
			pdf := samplePDF(t, 4096)
			open := func() (io.ReaderAt, int64, error) { return bytes.NewReader(pdf), int64(len(pdf)), nil }
			status := func(token string) string {
				t.Helper()
				req, _ := http.NewRequest(http.MethodGet, w.srv.URL+"/api/v1/credentials?owner=self", nil)
				req.Header.Set("Authorization", "Bearer "+token)
				resp, err := w.srv.Client().Do(req)
				if err != nil {
					t.Fatal(err)
				}
				defer resp.Body.Close()
				var own signing.OwnCredentialsResponse
				if err := json.NewDecoder(resp.Body).Decode(&own); err != nil || resp.StatusCode != 200 || len(own.Credentials) != 1 {
					t.Fatalf("own credentials: %d %v %+v", resp.StatusCode, err, own)
				}
				return own.Credentials[0].CertStatus
			}
			mb, ctype := batchBody(t, []batchPart{{"a.pdf", pdf}})
			// Before: everything works, listed valid.
			if code, _, body := w.send(t, "/api/v1/seal?level=B-B&credential="+seal, agency, "application/pdf", pdf, nil); code != 200 {
				t.Fatalf("seal before: %d %.300s", code, body)
			}
			if st := status(agency); st != "valid" {
				t.Fatalf("certStatus %q before, want valid", st)
			}

			issuers.on.Store(true)
			for _, who := range []string{agency, citizen} {
				if st := status(who); st != "revoked" {
					t.Fatalf("certStatus %q once the issuing CA is revoked, want revoked", st)
				}
			}
			check := func(name string, code int, body []byte) {
				t.Helper()
				if code != http.StatusForbidden || !strings.Contains(string(body), "issuing CA") {
					t.Fatalf("%s under a revoked issuing CA: %d %.300s", name, code, body)
				}
			}
			code, _, body := w.send(t, "/api/v1/seal?level=B-B&credential="+seal, agency, "application/pdf", pdf, nil)
			check("seal", code, body)
			code, _, body = w.send(t, "/api/v1/seal/batch?level=B-B&credential="+seal, agency, ctype, mb, nil)
			check("seal batch", code, body)
			code, _, body = w.send(t, "/api/v1/sign?level=B-B&credential="+sign, citizen, "application/pdf", pdf, map[string]string{signing.PINHeader: testPIN})
			check("sign", code, body)
			var out bytes.Buffer
			if _, err := w.svc.OperatorSeal(ctx, "cli:operator", seal, signer.LevelBB, open, &out); !errors.Is(err, signing.ErrCertificateRevoked) || out.Len() != 0 {
				t.Fatalf("operator seal under a revoked issuing CA: %v, %d bytes", err, out.Len())
			}
			if _, err := w.svc.Credential(ctx, sign, signing.OwnerCitizen, "12345678"); !errors.Is(err, signing.ErrCertificateRevoked) {
				t.Fatalf("Credential under a revoked issuing CA: %v", err)
			}
			code, m := w.csc(t, "/csc/v2/credentials/authorize", citizen, map[string]any{"credentialID": sign, "numSignatures": 1,
				"hashes": []string{"47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU="}, "hashAlgorithmOID": "2.16.840.1.101.3.4.2.1", "PIN": testPIN})
			if code != http.StatusBadRequest || m["error"] != "invalid_request" {
				t.Fatalf("CSC authorize under a revoked issuing CA: %d %v", code, m)
			}
			if n := len(w.records(t, signing.ActionSeal, "refused", "cli:operator")); n != 1 {
				t.Fatalf("%d refused operator seal records, want 1", n)
			}
			if n := len(w.records(t, signing.ActionSeal, "refused", "")); n < 3 {
				t.Fatalf("%d refused seal records, want at least 3 (seal, batch, operator)", n)
			}
		})
	}
}
