package signing_test

import (
	"net/http"
	"testing"

	"github.com/thiqa/thiqa/policies"
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
		w.auditDown.Store(down)
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
