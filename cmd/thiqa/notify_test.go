package main

import (
	"crypto/hmac"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/thiqa/thiqa/notify"
)

// With the notify section on, `thiqa serve` tells the citizen of a
// certificate issued and revoked on their ID, signed with the secret of
// the file, by role and never by name; with it off (the default) nothing
// runs (the other tests). A new key written to the file (write, then
// rename) signs the next notification, without a restart.
func TestServeNotifiesCitizens(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "data")
	initData(t, dir)
	secret, next := "serve-test-webhook-secret-0123456789", "serve-test-webhook-secret-rotated-9876"
	var mu sync.Mutex
	var got []notify.Notification
	var bodies, signedBy []string
	gw := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		by := ""
		for _, k := range []string{secret, next} { // the gateway takes both during the change
			if hmac.Equal([]byte(r.Header.Get(notify.HeaderSignature)), []byte(notify.Sign([]byte(k), r.Header.Get(notify.HeaderTimestamp), body))) {
				by = k
			}
		}
		if by == "" {
			t.Errorf("bad signature: %s", body)
			w.WriteHeader(http.StatusUnauthorized)
			return
		}
		var n notify.Notification
		_ = json.Unmarshal(body, &n)
		mu.Lock()
		got, bodies, signedBy = append(got, n), append(bodies, string(body)), append(signedBy, by)
		mu.Unlock()
	}))
	defer gw.Close()
	writeFile(t, filepath.Join(dir, "notify.secret"), secret+"\n")
	f, err := os.OpenFile(filepath.Join(dir, "thiqa.yaml"), os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	fmt.Fprintf(f, "notify:\n  enabled: true\n  webhook:\n    url: %s/notify\n    secretFile: notify.secret\n  expiryReminders: [1h]\n", gw.URL)
	f.Close()
	srv := startServer(t, dir, nil)
	officer := lastLine(mustThiqa(t, nil, "token", "--data", dir, "--subject", "officer-7", "--role", "registration-officer").stdout)
	code, body := srv.post(t, "/api/v1/certificates", officer, map[string]any{"profile": "citizen-auth", "subject": citizenSubject(), "csr": newTestCSR(t)})
	var issued struct {
		Serial string `json:"serial"`
	}
	if code != http.StatusCreated || json.Unmarshal(body, &issued) != nil {
		t.Fatalf("issue: %d %s", code, body)
	}
	waitUntil := func(what string, cond func() bool) {
		t.Helper()
		for deadline := time.Now().Add(30 * time.Second); !cond(); time.Sleep(50 * time.Millisecond) {
			if time.Now().After(deadline) {
				t.Fatalf("timed out waiting for %s; log:\n%s", what, srv.stderr.String())
			}
		}
	}
	waitUntil("the issue's notification", func() bool { mu.Lock(); defer mu.Unlock(); return len(got) >= 1 })
	writeFile(t, filepath.Join(dir, "notify.secret.tmp"), next+"\n")
	if err := os.Rename(filepath.Join(dir, "notify.secret.tmp"), filepath.Join(dir, "notify.secret")); err != nil {
		t.Fatal(err)
	}
	waitUntil("the new key taken up", func() bool { return strings.Contains(srv.stderr.String(), notify.ActionSecretRotate) })
	if code, body := srv.post(t, "/api/v1/certificates/"+issued.Serial+"/revoke", officer, map[string]string{"reason": "keyCompromise"}); code != http.StatusOK {
		t.Fatalf("revoke: %d %s", code, body)
	}
	deadline := time.Now().Add(30 * time.Second)
	for {
		mu.Lock()
		n := len(got)
		mu.Unlock()
		if n >= 2 || time.Now().After(deadline) {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	srv.stop(t)
	mu.Lock()
	defer mu.Unlock()
	if len(signedBy) != 2 || signedBy[0] != secret || signedBy[1] != next {
		t.Fatalf("the issue's notification is to be signed with the first key, the revocation's with the new one: %d notifications", len(signedBy))
	}
	if len(got) != 2 || got[0].Event != notify.EventIssue || got[1].Event != notify.EventRevoke ||
		got[0].CivilNumber != "12345678" || got[1].Serial != issued.Serial || got[1].Details["reason"] != "keyCompromise" || got[1].Details["by"] == nil {
		t.Fatalf("notifications: %+v", got)
	}
	for _, b := range bodies {
		for _, s := range []string{"Aisha", "officer-7", "127.0.0.1"} {
			if strings.Contains(b, s) {
				t.Errorf("%q in %s", s, b)
			}
		}
	}
	if strings.Contains(srv.stderr.String(), secret) || strings.Contains(srv.stderr.String(), next) {
		t.Fatal("the secret is in the server's log")
	}
	if fp := notify.Fingerprint([]byte(next)); !strings.Contains(srv.stderr.String(), fp) {
		t.Fatalf("the new key's fingerprint %s is not in the log:\n%s", fp, srv.stderr.String())
	}
	if !strings.Contains(srv.stderr.String(), "notifications to citizens started") {
		t.Fatalf("no start line in the log:\n%s", srv.stderr.String())
	}
}
