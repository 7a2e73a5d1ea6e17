package enrol_test

import (
	"crypto/rand"
	"crypto/rsa"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/thiqa/thiqa/ca/catest"
	"github.com/thiqa/thiqa/ca/revocation"
	"github.com/thiqa/thiqa/enrol"
	"github.com/thiqa/thiqa/internal/audit"
	"github.com/thiqa/thiqa/internal/audit/audittest"
	"github.com/thiqa/thiqa/policies"
	"github.com/thiqa/thiqa/store/storetest"
)

// No refusal leaves without its audit record: while the audit log cannot
// be written, a malformed request for an enrolment is answered 500
// instead of 400, and as before once the log is back.
func TestUnrecordedRefusalIsAFailure(t *testing.T) {
	d := storetest.Dialects()[0]
	db := storetest.Open(t, d.NewConfig(t))
	log := audit.New(db, nil, nil, audit.Options{})
	gate := audittest.New(log)
	t.Cleanup(log.Close)
	pki := catest.New(t, db.Certificates(nil), log, "http://pki.thiqa.test")
	key, _ := rsa.GenerateKey(rand.Reader, 2048)
	svc, err := enrol.New(enrol.Config{Store: db.Enrolments(), Issuer: pki.Authority, Certificates: db.Certificates(nil),
		Status: revocation.NewChecker(db.Certificates(nil), time.Second, nil), Audit: gate, SecretKey: key,
		Profiles: []string{policies.ProfileCitizenAuth}})
	if err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	svc.Register(mux, func(policies.Action) func(http.Handler) http.Handler {
		return func(h http.Handler) http.Handler { return h }
	})
	for _, d := range []bool{true, false} {
		gate.Down.Store(d)
		w := httptest.NewRecorder()
		mux.ServeHTTP(w, httptest.NewRequest(http.MethodPost, "/api/v1/enrolments", strings.NewReader("{not json")))
		want := http.StatusBadRequest
		if d {
			want = http.StatusInternalServerError
		}
		if w.Code != want {
			t.Errorf("audit down %v: a malformed request answered %d, want %d: %s", d, w.Code, want, w.Body)
		}
	}
}
