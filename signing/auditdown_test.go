package signing_test

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net/http"
	"testing"

	"github.com/thiqa/thiqa/identity"
	"github.com/thiqa/thiqa/policies"
	"github.com/thiqa/thiqa/signer"
	"github.com/thiqa/thiqa/signing"
	"github.com/thiqa/thiqa/signing/csc"
	"github.com/thiqa/thiqa/store/storetest"
)

// No answer leaves without its audit record: while the audit log cannot be
// written, a request the service would refuse (400) is answered as a
// failure (500), on the REST API and on the CSC API, and once the log is
// back the same requests are refused as before.
func TestUnrecordedRefusalIsAFailure(t *testing.T) {
	w := newWorld(t, storetest.Dialects()[0], worldOptions{})
	agency := w.token(t, "NTROM-1234567", policies.RoleAgency)
	citizen := w.token(t, "12345678", policies.RoleCitizen)
	for _, down := range []bool{true, false} {
		w.auditGate.Down.Store(down)
		want, wantCSC := http.StatusBadRequest, "invalid_request"
		if down {
			want, wantCSC = http.StatusInternalServerError, "server_error"
		}
		// No credential named: refused before any key is touched.
		if code, _, body := w.send(t, "/api/v1/seal?level=B-B", agency, "application/pdf", []byte("%PDF-1.7\n"), nil); code != want {
			t.Errorf("audit down %v: seal answered %d, want %d: %s", down, code, want, body)
		}
		code, m := w.csc(t, "/csc/v2/credentials/info", citizen, map[string]any{"credentialID": "no-such-credential"})
		if code != want || m["error"] != wantCSC {
			t.Errorf("audit down %v: credentials/info answered %d %v, want %d %s", down, code, m, want, wantCSC)
		}
	}
}

// The same holds for the extension API, the PIN life cycle, the listing
// of one's own credentials and the operator's seal: a refusal whose record
// cannot be written is a failure (500; ErrAudit outside HTTP).
func TestUnrecordedRefusalIsAFailureElsewhere(t *testing.T) {
	w := newWorld(t, storetest.Dialects()[0], worldOptions{})
	agency := w.token(t, "NTROM-1234567", policies.RoleAgency)
	citizen := w.token(t, "12345678", policies.RoleCitizen)
	pdf := samplePDF(t, 8<<10)
	list := func() int {
		req, err := http.NewRequest(http.MethodGet, w.srv.URL+"/api/v1/credentials", nil)
		if err != nil {
			t.Fatal(err)
		}
		req.Header.Set("Authorization", "Bearer "+citizen)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	for _, down := range []bool{true, false} {
		w.auditGate.Down.Store(down)
		fail := func(normal int) int {
			if down {
				return http.StatusInternalServerError
			}
			return normal
		}
		if code, _, body := w.send(t, "/api/v1/extend?level=B-B", agency, "application/pdf", pdf, nil); code != fail(http.StatusBadRequest) {
			t.Errorf("audit down %v: extend to B-B answered %d: %.200s", down, code, body)
		}
		if code, _, body := w.send(t, "/api/v1/extend?level=B-LTA", agency, "application/pdf", pdf, nil); code != fail(http.StatusUnprocessableEntity) {
			t.Errorf("audit down %v: extending an unsigned PDF answered %d: %.200s", down, code, body)
		}
		if code, m := w.csc(t, "/api/v1/credentials/no-such-credential/pin/change", citizen, signing.PINChangeRequest{Old: testPIN, New: "583920"}); code != fail(http.StatusForbidden) {
			t.Errorf("audit down %v: changing the PIN of an unknown credential answered %d %v", down, code, m)
		}
		if code := list(); code != fail(http.StatusBadRequest) {
			t.Errorf("audit down %v: listing credentials without owner=self answered %d", down, code)
		}
		var out bytes.Buffer
		_, err := w.svc.OperatorSeal(context.Background(), "cli:operator", "no-such-credential", signer.LevelBB,
			func() (io.ReaderAt, int64, error) { return bytes.NewReader(pdf), int64(len(pdf)), nil }, &out)
		if want := map[bool]error{true: signing.ErrAudit, false: signing.ErrCredentialRefused}[down]; !errors.Is(err, want) || out.Len() != 0 {
			t.Errorf("audit down %v: operator seal with an unknown credential: %v (%d bytes), want %v", down, err, out.Len(), want)
		}
	}
}

// The PIN check of a credential authorization through the CSC OAuth2
// authorization server: a refusal whose record cannot be written is a
// failure (ErrAudit), which the digital-ID provider answers server_error,
// never a refusal of the credential or the PIN.
func TestUnrecordedPINCheckRefusalIsAFailure(t *testing.T) {
	w := newWorld(t, storetest.Dialects()[0], worldOptions{})
	req := &identity.CredentialRequest{CredentialID: "no-such-credential", NumSignatures: 1, Hashes: [][]byte{bytes.Repeat([]byte{1}, 32)},
		HashAlgorithmOID: "2.16.840.1.101.3.4.2.1"}
	for _, down := range []bool{true, false} {
		w.auditGate.Down.Store(down)
		err := csc.ProviderCredentials{API: w.api}.CheckSigningPIN(context.Background(), "12345678", "oidc-app", req, testPIN)
		switch {
		case down && (!errors.Is(err, signing.ErrAudit) || errors.Is(err, identity.ErrCredentialUnusable)):
			t.Errorf("audit down: unknown credential: %v, want an audit failure only", err)
		case !down && !errors.Is(err, identity.ErrCredentialUnusable):
			t.Errorf("audit up: unknown credential: %v, want ErrCredentialUnusable", err)
		}
	}
}
