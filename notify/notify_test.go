package notify

import (
	"bytes"
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/thiqa/thiqa/identity/activity"
)

// The section is checked only when enabled, and each problem names its key.
func TestConfigValidate(t *testing.T) {
	if err := (Config{}).Validate(); err != nil {
		t.Fatalf("off: %v", err)
	}
	good := Config{Enabled: true, Webhook: WebhookConfig{URL: "https://gateway.example/notify", SecretFile: "notify.secret"}}
	if err := good.Validate(); err != nil {
		t.Fatalf("good: %v", err)
	}
	for _, u := range []string{"http://127.0.0.1:8080/n", "http://localhost/n", "http://[::1]:9/n"} {
		c := good
		c.Webhook.URL = u
		if err := c.Validate(); err != nil {
			t.Errorf("%s: %v", u, err)
		}
	}
	bad := map[string]func(c *Config){
		"notify.webhook.url: https is required":  func(c *Config) { c.Webhook.URL = "http://gateway.example/notify" },
		"notify.webhook.url: want an absolute":   func(c *Config) { c.Webhook.URL = "gateway.example" },
		"notify.webhook.url: want a URL without": func(c *Config) { c.Webhook.URL = "https://u:p@gateway.example/" },
		"notify.webhook.secretFile: required":    func(c *Config) { c.Webhook.SecretFile = "" },
		"notify.webhook.timeout":                 func(c *Config) { c.Webhook.Timeout = -time.Second },
		"notify.events[1]: unknown event":        func(c *Config) { c.Events = []string{EventIssue, "certificate.sold"} },
		"notify.expiryReminders[0]: want a dur":  func(c *Config) { c.ExpiryReminders = []time.Duration{-time.Hour} },
		"notify.expiryReminders[1]: 168h0m0s is": func(c *Config) { c.ExpiryReminders = []time.Duration{168 * time.Hour, 168 * time.Hour} },
		"notify.expiryReminders[0]: want whole":  func(c *Config) { c.ExpiryReminders = []time.Duration{time.Millisecond} },
		"notify.batch: want 1 to":                func(c *Config) { c.Batch = -1 },
	}
	for want, edit := range bad {
		c := good
		edit(&c)
		if err := c.Validate(); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%s: Validate() = %v", want, err)
		}
	}
}

// The secret file must exist, be the owner's alone, and hold a real key;
// the error names the YAML key and never the secret.
func TestReadSecret(t *testing.T) {
	if _, err := ReadSecret("/nonexistent/notify.secret"); !errors.Is(err, ErrSecretFile) || !strings.Contains(err.Error(), "notify.webhook.secretFile") {
		t.Fatalf("missing: %v", err)
	}
	open := writeSecret(t, testSecret, 0o644)
	if _, err := ReadSecret(open); !errors.Is(err, ErrSecretFile) || !strings.Contains(err.Error(), "chmod 0600") || strings.Contains(err.Error(), string(testSecret)) {
		t.Fatalf("0644: %v", err)
	}
	short := writeSecret(t, []byte("short"), 0o600)
	if _, err := ReadSecret(short); !errors.Is(err, ErrSecretFile) || strings.Contains(err.Error(), "short\"") {
		t.Fatalf("short: %v", err)
	}
	got, err := ReadSecret(writeSecret(t, testSecret, 0o600))
	if err != nil || !bytes.Equal(got, testSecret) {
		t.Fatalf("0600: %q %v", got, err)
	}
}

// ownedStore is a store where citizen A (11111111) holds serial 0aaa and
// credential cred-a.
func ownedStore() *memStore {
	s := newMemStore()
	s.owners["0aaa"] = Owner{CivilNumber: "11111111"}
	s.owners["cred-a"] = Owner{CivilNumber: "11111111", Credential: true}
	return s
}

// A gateway out (503) delays the notifications and loses none: once it is
// back they arrive in order, each once; a 400 skips its notification,
// which is logged and counted.
func TestGatewayOutage(t *testing.T) {
	st := ownedStore()
	g := newGateway(t, testSecret)
	reg := prometheus.NewRegistry()
	n := testNotifier(t, st, g.srv.URL, Options{Registerer: reg, Attempts: 2})
	drain(t, n) // the lease, the cursor at the head
	for i := 0; i < 6; i++ {
		st.add(activity.Record{Actor: "officer-1", Action: "credential.pin.reset", Object: "cred-a", Outcome: "success"})
	}
	down := true
	g.status = func(x Notification) int {
		switch {
		case down:
			return http.StatusServiceUnavailable
		case x.ID == "audit-4":
			return http.StatusBadRequest
		}
		return http.StatusOK
	}
	for i := 0; i < 3; i++ {
		if _, err := n.Round(context.Background()); err == nil {
			t.Fatal("a round with the gateway down succeeded")
		}
	}
	if len(g.ids()) != 0 || st.cursor != 0 {
		t.Fatalf("while down: %v, cursor %d", g.ids(), st.cursor)
	}
	if got := testutil.ToFloat64(n.m.lag); got != 6 {
		t.Fatalf("lag while down: %v", got)
	}
	g.mu.Lock()
	down = false
	g.mu.Unlock()
	drain(t, n)
	if got, want := g.ids(), []string{"audit-1", "audit-2", "audit-3", "audit-5", "audit-6"}; !slices.Equal(got, want) {
		t.Fatalf("delivered %v, want %v", got, want)
	}
	if st.cursor != 6 {
		t.Fatalf("cursor %d", st.cursor)
	}
	if got := testutil.ToFloat64(n.m.failures.WithLabelValues(failRefused)); got != 1 {
		t.Fatalf("refused: %v", got)
	}
	if got := testutil.ToFloat64(n.m.failures.WithLabelValues(failUnavailable)); got != 6 {
		t.Fatalf("unavailable: %v (3 rounds × 2 attempts)", got)
	}
	if got := testutil.ToFloat64(n.m.delivered.WithLabelValues(EventPINReset)); got != 5 {
		t.Fatalf("delivered: %v", got)
	}
	if got := testutil.ToFloat64(n.m.lag); got != 0 {
		t.Fatalf("lag: %v", got)
	}
}

// A failure in the middle of a batch keeps what was delivered before it:
// the cursor moves to the last record dealt with, and only the failed
// notification is sent again.
func TestFailureMidBatch(t *testing.T) {
	st := ownedStore()
	g := newGateway(t, testSecret)
	n := testNotifier(t, st, g.srv.URL, Options{Attempts: 1})
	drain(t, n)
	for i := 0; i < 5; i++ {
		st.add(activity.Record{Actor: "officer-1", Action: "credential.pin.reset", Object: "cred-a", Outcome: "success"})
	}
	fails := 1
	g.status = func(x Notification) int {
		if x.ID == "audit-3" && fails > 0 {
			fails--
			return http.StatusTooManyRequests
		}
		return http.StatusOK
	}
	if _, err := n.Round(context.Background()); err == nil {
		t.Fatal("no error")
	}
	if st.cursor != 2 {
		t.Fatalf("cursor %d, want 2", st.cursor)
	}
	drain(t, n)
	if got := g.ids(); fmt.Sprint(got) != "[audit-1 audit-2 audit-3 audit-4 audit-5]" {
		t.Fatalf("delivered %v", got)
	}
}

// Records archived (deleted from the head of the log) past the cursor are
// skipped with a warning, not a failure.
func TestArchivedRecordsSkipped(t *testing.T) {
	st := ownedStore()
	g := newGateway(t, testSecret)
	var logs bytes.Buffer
	n := testNotifier(t, st, g.srv.URL, Options{Logger: slog.New(slog.NewTextHandler(&logs, nil))})
	drain(t, n) // cursor 0: an empty log
	st.recs = append(st.recs, activity.Record{Seq: 41, Time: time.Now(), Actor: "officer-1", Action: "certificate.revoke", Object: "0aaa", Outcome: "success",
		Details: []byte(`{"reason":"keyCompromise","subject":"CN=Aisha"}`)})
	drain(t, n)
	if got := g.ids(); fmt.Sprint(got) != "[audit-41]" || st.cursor != 41 {
		t.Fatalf("delivered %v, cursor %d", got, st.cursor)
	}
	if !strings.Contains(logs.String(), "archived") || !strings.Contains(logs.String(), "skipped=40") {
		t.Fatalf("no warning: %s", logs.String())
	}
}

// The secret never reaches the logs, at any level, whatever happens.
func TestSecretNeverLogged(t *testing.T) {
	st := ownedStore()
	g := newGateway(t, testSecret)
	var logs bytes.Buffer
	n := testNotifier(t, st, g.srv.URL, Options{Logger: slog.New(slog.NewJSONHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug})), Attempts: 2})
	drain(t, n)
	st.add(activity.Record{Actor: "officer-1", Action: "credential.pin.reset", Object: "cred-a", Outcome: "success"})
	st.add(activity.Record{Actor: "officer-1", Action: "certificate.revoke", Object: "0aaa", Outcome: "success"})
	calls := 0
	g.status = func(Notification) int {
		calls++
		return []int{500, 503, 400, 200}[min(calls-1, 3)]
	}
	_, _ = n.Round(context.Background())
	drain(t, n)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { n.Run(ctx); close(done) }()
	time.Sleep(20 * time.Millisecond)
	cancel()
	<-done
	if logs.Len() == 0 {
		t.Fatal("nothing logged")
	}
	for _, s := range []string{string(testSecret), hex.EncodeToString(testSecret)} {
		if strings.Contains(logs.String(), s) {
			t.Fatalf("the secret is in the logs: %s", logs.String())
		}
	}
	// A bad secret file's error does not carry it either.
	p := writeSecret(t, testSecret, 0o640)
	if _, err := ReadSecret(p); err == nil || strings.Contains(err.Error(), string(testSecret)) {
		t.Fatalf("ReadSecret: %v", err)
	}
	_ = os.Remove(p)
}

// Expiry reminders: the smallest window a certificate is in, once, also
// across a restart; a larger window is not reminded after a smaller one.
func TestExpiryRemindersOnce(t *testing.T) {
	st := ownedStore()
	now := time.Now()
	st.expiring = []Expiring{{Serial: "0aaa", CivilNumber: "11111111", NotAfter: now.Add(5 * 24 * time.Hour)},
		{Serial: "0bbb", CivilNumber: "22222222", NotAfter: now.Add(20 * 24 * time.Hour)}}
	g := newGateway(t, testSecret)
	for i := range 2 { // a restart: a new notifier, the same store
		n := testNotifier(t, st, g.srv.URL, Options{})
		drain(t, n)
		if n.lastExpiry.IsZero() {
			t.Fatalf("run %d: no pass of the reminders", i)
		}
		_ = st.ReleaseLease(context.Background(), n.holder) // stopped
	}
	got := g.ids()
	slices.Sort(got)
	if fmt.Sprint(got) != "[expiry-0aaa-168h expiry-0bbb-720h]" {
		t.Fatalf("reminders %v", got)
	}
	for _, x := range g.got {
		if x.Event != EventExpiring || x.Description.EN == "" || x.Description.AR == "" || x.Details["window"] == nil {
			t.Fatalf("reminder %+v", x)
		}
	}
}

// The signature docs/api.md shows the gateway how to check (with openssl)
// is the one Sign makes.
func TestSignDocExample(t *testing.T) {
	body := `{"id":"audit-4211-3f9a0c5b7e21","civilNumber":"12345678","event":"credential.pin.reset","time":"2026-12-05T09:30:00Z","description":{"en":"PIN reset (an activation code issued)","ar":"إعادة تعيين الرمز السري (إصدار رمز تفعيل)"},"details":{"by":"registration-officer","credential":"c0a8f3e2-citizen"}}`
	if got := Sign([]byte("example-shared-secret-0123456789"), "1764927000", []byte(body)); got != "sha256=74579ce545168a3705a6d364ef70cf506429b24a9d447674187c751cfd5d46e1" {
		t.Fatalf("Sign = %s", got)
	}
}
