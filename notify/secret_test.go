package notify

import (
	"bytes"
	"context"
	"encoding/hex"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/thiqa/thiqa/identity/activity"
)

var (
	oldKey = []byte("old-key-0123456789abcdef-rotation")
	newKey = []byte("new-key-fedcba9876543210-rotation")
)

// lockedBuffer is a log sink safe for the notifier's goroutine and the test.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// replaceSecret writes secret (and a newline) to path as an operator
// rotates it: a new file of mode perm in the same folder, renamed over it.
func replaceSecret(t *testing.T, path string, secret []byte, perm os.FileMode) {
	t.Helper()
	tmp := path + ".new"
	if err := os.WriteFile(tmp, append(slices.Clone(secret), '\n'), perm); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(tmp, perm); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, path); err != nil {
		t.Fatal(err)
	}
}

// waitFor polls cond for up to 10 s.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(2 * time.Millisecond) {
		if cond() {
			return
		}
	}
	t.Fatalf("timed out waiting for %s", what)
}

// noSecretIn fails when any of the keys, raw or in hex, is in logs.
func noSecretIn(t *testing.T, logs string, keys ...[]byte) {
	t.Helper()
	for _, k := range keys {
		if strings.Contains(logs, string(k)) || strings.Contains(logs, hex.EncodeToString(k)) {
			t.Fatalf("a key is in the logs: %s", logs)
		}
	}
}

// A key written to the secret file (write, then rename) while the notifier
// runs signs the next deliveries, without a restart; notifications sent
// around the change are each delivered once, in order, and none signed
// with the old key after the first signed with the new one. The gateway
// takes both keys during the window, as docs/api.md tells it to.
func TestSecretRotationWhileRunning(t *testing.T) {
	path := filepath.Join(t.TempDir(), "notify.secret")
	replaceSecret(t, path, oldKey, 0o600)
	st := ownedStore()
	g := newGateway(t, oldKey)
	g.accept = [][]byte{newKey}
	logs := &lockedBuffer{}
	n := testNotifier(t, st, g.srv.URL, Options{Secret: oldKey, SecretFile: path,
		Logger: slog.New(slog.NewJSONHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { n.Run(ctx); close(done) }()
	defer func() { cancel(); <-done }()
	waitFor(t, "the first claim", func() bool { st.mu.Lock(); defer st.mu.Unlock(); return st.started })

	add := func(k int) {
		for range k {
			st.add(activity.Record{Actor: "officer-1", Action: "credential.pin.reset", Object: "cred-a", Outcome: "success"})
		}
	}
	delivered := func(k int) func() bool { return func() bool { return len(g.ids()) >= k } }
	add(3)
	waitFor(t, "3 deliveries", delivered(3))
	// Records keep coming while the key changes.
	for i := range 20 {
		add(1)
		if i == 10 {
			replaceSecret(t, path, newKey, 0o600)
		}
		time.Sleep(time.Millisecond)
	}
	waitFor(t, "the change logged", func() bool { return strings.Contains(logs.String(), "notification secret changed") })
	waitFor(t, "23 deliveries", delivered(23))
	add(3)
	waitFor(t, "26 deliveries", delivered(26))
	cancel()
	<-done

	var want []string
	for i := 1; i <= 26; i++ {
		want = append(want, fmt.Sprintf("audit-%d", i))
	}
	if got := g.ids(); !slices.Equal(got, want) {
		t.Fatalf("delivered %v, want each of audit-1..26 once, in order", got)
	}
	g.mu.Lock()
	by := slices.Clone(g.signedBy)
	g.mu.Unlock()
	oldFP, newFP := Fingerprint(oldKey), Fingerprint(newKey)
	first := slices.Index(by, newFP)
	if first < 3 || slices.Contains(by[first:], oldFP) || !slices.Equal(slices.Compact(slices.Clone(by[:first])), []string{oldFP}) {
		t.Fatalf("signed by %v: want the old key (%s), then only the new one (%s)", by, oldFP, newFP)
	}
	if slices.Contains(by[23:], oldFP) {
		t.Fatalf("deliveries after the change was logged were signed with the old key: %v", by[23:])
	}
	l := logs.String()
	if c := strings.Count(l, "notification secret changed"); c != 1 {
		t.Fatalf("the change logged %d times: %s", c, l)
	}
	for _, s := range []string{path, `"fingerprint":"` + newFP, `"previous":"` + oldFP, ActionSecretRotate} {
		if !strings.Contains(l, s) {
			t.Fatalf("the change's log line lacks %q: %s", s, l)
		}
	}
	noSecretIn(t, l, oldKey, newKey)
	if got := testutil.ToFloat64(n.m.secretErrors); got != 0 {
		t.Fatalf("secret errors: %v", got)
	}
}

// A key written during a long round (a slow gateway, a full batch) signs
// the rest of that round's deliveries: the file is looked at before each
// delivery too, not only as a round starts.
func TestSecretRotationMidRound(t *testing.T) {
	path := filepath.Join(t.TempDir(), "notify.secret")
	replaceSecret(t, path, oldKey, 0o600)
	st := ownedStore()
	g := newGateway(t, oldKey)
	g.accept = [][]byte{newKey}
	g.status = func(x Notification) int { // called with g.mu held
		if x.ID == "audit-2" {
			tmp := path + ".new"
			if err := os.WriteFile(tmp, append(slices.Clone(newKey), '\n'), 0o600); err != nil {
				t.Error(err)
			} else if err := os.Rename(tmp, path); err != nil {
				t.Error(err)
			}
		}
		return http.StatusOK
	}
	n := testNotifier(t, st, g.srv.URL, Options{Secret: oldKey, SecretFile: path})
	n.secret.every = 0  // every delivery looks (SecretCheckEvery in production)
	n.secret.settle = 0 // a renamed file is whole: read at once (TestSecretWrittenInPlace waits)
	drain(t, n)
	for range 5 {
		st.add(activity.Record{Actor: "officer-1", Action: "credential.pin.reset", Object: "cred-a", Outcome: "success"})
	}
	if busy, err := n.Round(context.Background()); err != nil || busy {
		t.Fatalf("round: %v %v", busy, err)
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	o, w := Fingerprint(oldKey), Fingerprint(newKey)
	if want := []string{o, o, w, w, w}; !slices.Equal(g.signedBy, want) {
		t.Fatalf("one round signed by %v, want %v", g.signedBy, want)
	}
}

// A secret file that became unusable (readable by others, too short,
// missing, a folder) keeps the last good key: the deliveries go on signed
// with it; each change is logged once, naming the file and never a key,
// and counted in thiqa_notify_secret_errors_total. A good key written
// afterwards is taken up.
func TestSecretFileBroken(t *testing.T) {
	path := filepath.Join(t.TempDir(), "notify.secret")
	replaceSecret(t, path, oldKey, 0o600)
	st := ownedStore()
	g := newGateway(t, oldKey) // only the old key: a delivery signed otherwise fails the test
	var logs bytes.Buffer
	n := testNotifier(t, st, g.srv.URL, Options{Secret: oldKey, SecretFile: path,
		Logger: slog.New(slog.NewJSONHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))})
	n.secret.settle = 0 // read at once (TestSecretWrittenInPlace waits)
	drain(t, n)
	if logs.Len() != 0 {
		t.Fatalf("the first look at an unchanged file logged: %s", logs.String())
	}
	leaked := []byte("world-readable-key-0123456789abcdef")
	breaks := []struct {
		name  string
		brk   func()
		inLog string
	}{
		{"mode 0644", func() { replaceSecret(t, path, leaked, 0o644) }, "chmod 0600"},
		{"chmod 0640 in place", func() {
			replaceSecret(t, path, oldKey, 0o600)
			drain(t, n) // usable again, the key unchanged
			if err := os.Chmod(path, 0o640); err != nil {
				t.Fatal(err)
			}
		}, "chmod 0600"},
		{"too short", func() { replaceSecret(t, path, []byte("short"), 0o600) }, "want a key of at least 16"},
		{"missing", func() { _ = os.Remove(path) }, "no such file"},
		{"a folder", func() { _ = os.Mkdir(path, 0o700) }, "is a folder"},
	}
	for i, b := range breaks {
		logs.Reset()
		b.brk()
		st.add(activity.Record{Actor: "officer-1", Action: "credential.pin.reset", Object: "cred-a", Outcome: "success"})
		drain(t, n)
		drain(t, n) // the file unchanged since: not logged nor counted again
		if got := testutil.ToFloat64(n.m.secretErrors); got != float64(i+1) {
			t.Fatalf("%s: thiqa_notify_secret_errors_total %v, want %d", b.name, got, i+1)
		}
		l := logs.String()
		if strings.Count(l, "cannot be used") != 1 || !strings.Contains(l, path) || !strings.Contains(l, b.inLog) ||
			!strings.Contains(l, `"level":"ERROR"`) || !strings.Contains(l, Fingerprint(oldKey)) {
			t.Fatalf("%s: logged %s", b.name, l)
		}
		noSecretIn(t, l, oldKey, leaked, []byte("short"))
	}
	if got := g.ids(); len(got) != len(breaks) || g.t.Failed() {
		t.Fatalf("delivered %v with the old key", got)
	}
	// Fixed with a new key: taken up, not counted as an error.
	_ = os.Remove(path)
	replaceSecret(t, path, newKey, 0o600)
	g.mu.Lock()
	g.secret = newKey
	g.mu.Unlock()
	st.add(activity.Record{Actor: "officer-1", Action: "credential.pin.reset", Object: "cred-a", Outcome: "success"})
	drain(t, n)
	if got := g.ids(); len(got) != len(breaks)+1 || testutil.ToFloat64(n.m.secretErrors) != float64(len(breaks)) {
		t.Fatalf("after the fix: delivered %v, errors %v", got, testutil.ToFloat64(n.m.secretErrors))
	}
	noSecretIn(t, logs.String(), oldKey, newKey)
}

// With one key, the headers of a delivery are byte for byte those
// docs/api.md shows the gateway (a contract), also when that key came in by
// a rotation of the file: one X-Thiqa-Signature value, "sha256=" and the
// hex HMAC, nothing else added.
func TestSingleKeyHeaderGolden(t *testing.T) {
	const (
		body   = `{"id":"audit-4211-3f9a0c5b7e21","civilNumber":"12345678","event":"credential.pin.reset","time":"2026-12-05T09:30:00Z","description":{"en":"PIN reset (an activation code issued)","ar":"إعادة تعيين الرمز السري (إصدار رمز تفعيل)"},"details":{"by":"registration-officer","credential":"c0a8f3e2-citizen"}}`
		docKey = "example-shared-secret-0123456789"
	)
	path := filepath.Join(t.TempDir(), "notify.secret")
	replaceSecret(t, path, oldKey, 0o600)
	g := newGateway(t, []byte(docKey))
	n := testNotifier(t, ownedStore(), g.srv.URL, Options{Secret: oldKey, SecretFile: path,
		Now: func() time.Time { return time.Unix(1764927000, 0) }})
	n.secret.settle = 0
	replaceSecret(t, path, []byte(docKey), 0o600)
	n.checkSecret(true)
	x := Notification{ID: "audit-4211-3f9a0c5b7e21", CivilNumber: "12345678", Event: EventPINReset,
		Time:        time.Date(2026, 12, 5, 9, 30, 0, 0, time.UTC),
		Description: Text{EN: "PIN reset (an activation code issued)", AR: arabic[EventPINReset]},
		Details:     map[string]any{"by": "registration-officer", "credential": "c0a8f3e2-citizen"}}
	if err := n.hook.post(context.Background(), x); err != nil {
		t.Fatal(err)
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	if len(g.bodies) != 1 || g.bodies[0] != body {
		t.Fatalf("body %q", g.bodies)
	}
	h := g.headers[0]
	want := http.Header{
		"Content-Type":      {"application/json"},
		"Idempotency-Key":   {"audit-4211-3f9a0c5b7e21"},
		"X-Thiqa-Timestamp": {"1764927000"},
		"X-Thiqa-Signature": {"sha256=74579ce545168a3705a6d364ef70cf506429b24a9d447674187c751cfd5d46e1"},
	}
	for k, v := range want {
		if !slices.Equal(h[k], v) {
			t.Errorf("%s: %q, want %q", k, h[k], v)
		}
	}
	for k := range h {
		if strings.HasPrefix(k, "X-Thiqa-") && want[k] == nil {
			t.Errorf("header %s added: %q", k, h[k])
		}
	}
}

// A key written in place (the file truncated, then written in more than
// one write, as `cat > file` or an editor may) is never taken half-written:
// a partial key of 16 bytes or more passes ReadSecret's checks, and a
// notification signed with it is refused by the gateway and skipped for
// good. A changed file is taken only once it stayed unchanged for a
// while; meanwhile the last good key signs, and the empty file of the
// truncation is no error.
func TestSecretWrittenInPlace(t *testing.T) {
	path := filepath.Join(t.TempDir(), "notify.secret")
	replaceSecret(t, path, oldKey, 0o600)
	st := ownedStore()
	g := newGateway(t, oldKey) // a delivery signed with another key fails the test
	g.accept = [][]byte{newKey}
	n := testNotifier(t, st, g.srv.URL, Options{Secret: oldKey, SecretFile: path})
	n.secret.every = 0
	drain(t, n)
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_TRUNC, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	add := func() {
		st.add(activity.Record{Actor: "officer-1", Action: "credential.pin.reset", Object: "cred-a", Outcome: "success"})
		drain(t, n)
	}
	add() // the file empty: the old key signs, no error
	if _, err := f.Write(newKey[:20]); err != nil {
		t.Fatal(err)
	}
	for range 3 { // part of the key written, the writer not done: the old key signs
		add()
		time.Sleep(SecretSettle / 10)
	}
	if _, err := f.Write(append(slices.Clone(newKey[20:]), '\n')); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	for deadline := time.Now().Add(10 * SecretCheckEvery); ; time.Sleep(SecretCheckEvery / 4) {
		add()
		g.mu.Lock()
		last := g.signedBy[len(g.signedBy)-1]
		g.mu.Unlock()
		if last == Fingerprint(newKey) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the key written in place was never taken up")
		}
	}
	if got := testutil.ToFloat64(n.m.secretErrors); got != 0 {
		t.Fatalf("a key being written counted as %v errors", got)
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	if len(g.signedBy) != len(st.recs) {
		t.Fatalf("%d notifications delivered of %d", len(g.signedBy), len(st.recs))
	}
}

// A secret file replaced by a named pipe (mode 0600 passes the mode check)
// is refused as unusable, not read: opening and reading a pipe waits for a
// writer, which would hold up the notifier's loop for good.
func TestSecretFileNamedPipe(t *testing.T) {
	path := filepath.Join(t.TempDir(), "notify.secret")
	replaceSecret(t, path, oldKey, 0o600)
	st := ownedStore()
	g := newGateway(t, oldKey)
	n := testNotifier(t, st, g.srv.URL, Options{Secret: oldKey, SecretFile: path})
	n.secret.settle = 0
	drain(t, n)
	fifo := path + ".fifo"
	if err := syscall.Mkfifo(fifo, 0o600); err != nil {
		t.Skipf("no named pipes here: %v", err)
	}
	if err := os.Rename(fifo, path); err != nil {
		t.Fatal(err)
	}
	st.add(activity.Record{Actor: "officer-1", Action: "credential.pin.reset", Object: "cred-a", Outcome: "success"})
	done := make(chan struct{})
	go func() { defer close(done); drain(t, n) }()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("the notifier is stuck reading a named pipe")
	}
	if got := testutil.ToFloat64(n.m.secretErrors); got != 1 {
		t.Fatalf("thiqa_notify_secret_errors_total %v, want 1", got)
	}
	if got := g.ids(); len(got) != 1 {
		t.Fatalf("delivered %v, want one signed with the last good key", got)
	}
}

// A secret file that is a symbolic link rotated by swapping what the link
// leads to (a Kubernetes secret volume: notify.secret -> ..data/notify.secret,
// ..data -> ..<timestamp>, the ..data link renamed over) is followed: the
// new key is taken up. The files the links lead to are mode 0400, as the
// volume's defaultMode must make them.
func TestSecretFileSymlinkSwap(t *testing.T) {
	dir := t.TempDir()
	version := func(name string, key []byte) {
		if err := os.Mkdir(filepath.Join(dir, name), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, name, "notify.secret"), key, 0o400); err != nil {
			t.Fatal(err)
		}
		if err := os.Symlink(name, filepath.Join(dir, "..data_tmp")); err != nil {
			t.Fatal(err)
		}
		if err := os.Rename(filepath.Join(dir, "..data_tmp"), filepath.Join(dir, "..data")); err != nil {
			t.Fatal(err)
		}
	}
	version("..2026_12_05_09_00_00.1", oldKey)
	path := filepath.Join(dir, "notify.secret")
	if err := os.Symlink(filepath.Join("..data", "notify.secret"), path); err != nil {
		t.Fatal(err)
	}
	st := ownedStore()
	g := newGateway(t, oldKey)
	g.accept = [][]byte{newKey}
	n := testNotifier(t, st, g.srv.URL, Options{Secret: oldKey, SecretFile: path})
	n.secret.settle = 0
	drain(t, n)
	version("..2026_12_05_10_00_00.2", newKey)
	st.add(activity.Record{Actor: "officer-1", Action: "credential.pin.reset", Object: "cred-a", Outcome: "success"})
	drain(t, n)
	g.mu.Lock()
	defer g.mu.Unlock()
	if !slices.Equal(g.signedBy, []string{Fingerprint(newKey)}) || testutil.ToFloat64(n.m.secretErrors) != 0 {
		t.Fatalf("signed by %v (want the new key %s), errors %v", g.signedBy, Fingerprint(newKey), testutil.ToFloat64(n.m.secretErrors))
	}
}
