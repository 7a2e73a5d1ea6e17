package est_test

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/thiqa/thiqa/enrol"
	"github.com/thiqa/thiqa/internal/audit/audittest"
	"github.com/thiqa/thiqa/store/storetest"
)

// No refusal leaves without its audit record: while the enrolment
// service's audit log cannot be written, EST requests it would refuse
// are answered 500, and as before once the log is back.
func TestESTUnrecordedRefusalIsAFailure(t *testing.T) {
	var gate *audittest.Gate
	_, svc, mux := newESTServer(t, storetest.Dialects()[0], func(log enrol.Auditor) enrol.Auditor { gate = audittest.New(log); return gate })
	ts := httptest.NewTLSServer(mux)
	t.Cleanup(ts.Close)
	c, err := svc.Create(t.Context(), "officer-1", "citizen-auth",
		map[string]string{"givenName": "Aisha", "surname": "Al Harthy", "commonName": "Aisha Al Harthy", "civilNumber": "12345678", "country": "OM"}, 0)
	if err != nil {
		t.Fatal(err)
	}
	post := func(user, pass string) int {
		t.Helper()
		req, _ := http.NewRequest(http.MethodPost, ts.URL+"/.well-known/est/simpleenroll", strings.NewReader("%%%"))
		req.Header.Set("Content-Type", "application/pkcs10")
		if user != "" {
			req.SetBasicAuth(user, pass)
		}
		resp, err := ts.Client().Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	for _, d := range []bool{true, false} {
		gate.Down.Store(d)
		want := func(normal int) int {
			if d {
				return http.StatusInternalServerError
			}
			return normal
		}
		if st := post(c.Reference, c.Secret); st != want(http.StatusBadRequest) {
			t.Errorf("audit down %v: a body that is not base64 answered %d", d, st)
		}
		if st := post(c.Reference, "AAAAAAAAAAAAAAAAAAAAAAAAAA"); st != want(http.StatusBadRequest) {
			t.Errorf("audit down %v: a body that is not base64, with a wrong secret, answered %d", d, st)
		}
	}
}
