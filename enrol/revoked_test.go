package enrol_test

import (
	"crypto/rand"
	"crypto/rsa"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/thiqa/thiqa/ca"
	"github.com/thiqa/thiqa/ca/catest"
	"github.com/thiqa/thiqa/ca/revocation"
	"github.com/thiqa/thiqa/enrol"
	"github.com/thiqa/thiqa/internal/audit"
	"github.com/thiqa/thiqa/policies"
	"github.com/thiqa/thiqa/store/storetest"
)

// TestCreateIssuerRevoked: once the root CRL revokes the issuing CA of the
// profile, POST /api/v1/enrolments for it answers 409 issuing-ca-revoked
// (as the CA API does), no Retry-After, and creates no enrolment.
func TestCreateIssuerRevoked(t *testing.T) {
	d := storetest.Dialects()[0]
	db := storetest.Open(t, d.NewConfig(t))
	log := audit.New(db, nil, nil, audit.Options{})
	t.Cleanup(log.Close)
	pki := catest.New(t, db.Certificates(nil), log, "http://pki.thiqa.test")
	key, _ := rsa.GenerateKey(rand.Reader, 2048)
	svc, err := enrol.New(enrol.Config{Store: db.Enrolments(), Issuer: pki.Authority, Certificates: db.Certificates(nil),
		Status: revocation.NewChecker(db.Certificates(nil), time.Second, nil), Audit: log, SecretKey: key,
		Profiles: []string{policies.ProfileCitizenAuth}})
	if err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	svc.Register(mux, func(policies.Action) func(http.Handler) http.Handler {
		return func(h http.Handler) http.Handler { return h }
	})
	pki.RevokeCA(t, "citizen")
	body, _ := json.Marshal(enrol.CreateRequest{Profile: policies.ProfileCitizenAuth, Subject: citizen()})
	w := httptest.NewRecorder()
	mux.ServeHTTP(w, httptest.NewRequest(http.MethodPost, "/api/v1/enrolments", strings.NewReader(string(body))))
	if w.Code != http.StatusConflict || !strings.Contains(w.Body.String(), ca.ProblemIssuerRevoked) || w.Header().Get("Retry-After") != "" {
		t.Fatalf("POST /api/v1/enrolments from a revoked CA: %d %v %s", w.Code, w.Header(), w.Body)
	}
}
