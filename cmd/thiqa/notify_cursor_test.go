package main

import (
	"database/sql"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/thiqa/thiqa/internal/testenv"
)

// TestNotifyStatusAndRetire, on SQLite and PostgreSQL: `thiqa notify
// status` shows the cursor left behind by notifications turned off, its
// lease and lag; `thiqa notify retire` refuses (exit 1, one line naming
// the file or the lease's holder) while they are on in thiqa.yaml, a node
// holds the lease, or its lease lapsed a moment ago (notify.RetireQuiet),
// and otherwise deletes the cursor
// with a notify.cursor.retire audit record (the chain still verifies);
// audit archive then no longer stops at it, without --skip-undelivered.
func TestNotifyStatusAndRetire(t *testing.T) {
	for _, dialect := range []string{"sqlite", "postgres"} {
		t.Run(dialect, func(t *testing.T) {
			var env []string
			var dir string
			var db *sql.DB
			var err error
			if dialect == "postgres" {
				dsn := testenv.PostgresDSN(t)
				env = []string{"THIQA_TEST_DSN=" + dsn}
				dir = pgFolder(t, dsn)
				db, err = sql.Open("pgx", dsn)
			} else {
				dir = filepath.Join(t.TempDir(), "data")
				initData(t, dir)
				db, err = sql.Open("sqlite", filepath.Join(dir, "thiqa.db"))
			}
			if err != nil {
				t.Fatal(err)
			}
			defer db.Close()
			exec := func(q string) {
				t.Helper()
				if _, err := db.Exec(q); err != nil {
					t.Fatalf("%s: %v", q, err)
				}
			}
			m := regexp.MustCompile(`"seq":(\d+),`).FindStringSubmatch(mustRead(t, filepath.Join(dir, "audit", "checkpoints.jsonl")))
			if m == nil {
				t.Fatal("no checkpoint after init")
			}
			type status struct {
				Enabled bool   `json:"enabled"`
				Cursor  *int64 `json:"cursor"`
				Head    int64  `json:"head"`
				Lag     int64  `json:"lag"`
				Lease   *struct {
					Holder string `json:"holder"`
					Until  string `json:"until"`
					Live   bool   `json:"live"`
				} `json:"lease"`
			}
			readStatus := func() status {
				t.Helper()
				var s status
				r := mustThiqa(t, env, "notify", "status", "--data", dir, "--json")
				if err := json.Unmarshal([]byte(r.stdout), &s); err != nil {
					t.Fatalf("notify status --json: %v\n%s", err, r.stdout)
				}
				return s
			}
			if r := mustThiqa(t, env, "notify", "status", "--data", dir); !strings.Contains(r.stdout, "cursor         none") ||
				!strings.Contains(r.stdout, "notifications  off") {
				t.Fatalf("notify status of a folder that never notified:\n%s", r.stdout)
			}
			// Notifications ran once, up to record 0 (init's records came
			// before them in a real deployment), and were turned off.
			exec("INSERT INTO notify_state (name, cursor_seq, holder, lease_until) VALUES ('audit', 0, 'node-1', 0)")
			s := readStatus()
			if s.Enabled || s.Cursor == nil || *s.Cursor != 0 || s.Head == 0 || s.Lag != s.Head || s.Lease == nil || s.Lease.Live || s.Lease.Holder != "node-1" {
				t.Fatalf("notify status --json: %+v", s)
			}
			if r := mustThiqa(t, env, "notify", "status", "--data", dir); !strings.Contains(r.stdout, "thiqa notify retire") {
				t.Fatalf("notify status does not point to retire:\n%s", r.stdout)
			}

			// Turned on in thiqa.yaml: refused.
			yaml := filepath.Join(dir, "thiqa.yaml")
			off := mustRead(t, yaml)
			writeFile(t, filepath.Join(dir, "notify.secret"), "cmd-test-webhook-secret-0123456789\n")
			if err := os.Chmod(filepath.Join(dir, "notify.secret"), 0o600); err != nil {
				t.Fatal(err)
			}
			writeFile(t, yaml, off+"notify:\n  enabled: true\n  webhook:\n    url: https://notify.gov.example/thiqa\n    secretFile: notify.secret\n")
			if s := readStatus(); !s.Enabled {
				t.Fatalf("notify status with notify.enabled: %+v", s)
			}
			r := thiqa(t, env, "notify", "retire", "--data", dir)
			if line := errorLine(t, r); r.code != 1 || !strings.Contains(line, "turn them off first") || !strings.Contains(line, "let the notifier catch up") ||
				!strings.Contains(line, "on in "+yaml) {
				t.Fatalf("notify retire while enabled: exit %d\n%s", r.code, r.stderr)
			}
			writeFile(t, yaml, off)

			// A node still holds the lease: refused.
			exec("UPDATE notify_state SET lease_until = 9000000000000000000")
			r = thiqa(t, env, "notify", "retire", "--data", dir)
			// One line that says it once: no "notify: … store: notify: …".
			if line := errorLine(t, r); r.code != 1 || strings.Count(line, "node-1") != 1 || !strings.Contains(line, "a node still runs with notifications on") ||
				strings.Count(line, "notify:") != 1 || strings.Contains(line, "store:") {
				t.Fatalf("notify retire under a live lease: exit %d\n%s", r.code, r.stderr)
			}
			if s := readStatus(); s.Cursor == nil || s.Lease == nil || !s.Lease.Live {
				t.Fatalf("notify status under a live lease: %+v", s)
			}
			// Lapsed a moment ago: its node may only be waiting to retry.
			exec(fmt.Sprintf("UPDATE notify_state SET lease_until = %d", time.Now().Add(-10*time.Second).UnixNano()))
			r = thiqa(t, env, "notify", "retire", "--data", dir)
			if line := errorLine(t, r); r.code != 1 || !strings.Contains(line, "node-1") || !strings.Contains(line, "lapsed at") || !strings.Contains(line, "retire again after") {
				t.Fatalf("notify retire just after the lease lapsed: exit %d\n%s", r.code, r.stderr)
			}
			exec("UPDATE notify_state SET lease_until = 0")

			head := readStatus().Head
			r = mustThiqa(t, env, "notify", "retire", "--data", dir)
			if !strings.Contains(r.stdout, "cursor at record 0 retired") || !strings.Contains(r.stdout, "records after it are never told") {
				t.Fatalf("notify retire:\n%s", r.stdout)
			}
			var details string
			if err := db.QueryRow("SELECT CAST(details AS TEXT) FROM audit_log WHERE action = 'notify.cursor.retire'").Scan(&details); err != nil {
				t.Fatalf("the notify.cursor.retire record: %v", err)
			}
			var d struct{ Cursor, Undelivered int64 }
			if err := json.Unmarshal([]byte(details), &d); err != nil || d.Cursor != 0 || d.Undelivered != head {
				t.Fatalf("notify.cursor.retire details %s (head was %d): %v", details, head, err)
			}
			if s := readStatus(); s.Cursor != nil || s.Lease != nil || s.Head != head+1 {
				t.Fatalf("notify status after retire: %+v", s)
			}
			if r := mustThiqa(t, env, "notify", "retire", "--data", dir); !strings.Contains(r.stdout, "nothing to do") {
				t.Fatalf("notify retire again:\n%s", r.stdout)
			}

			// The archive no longer waits for notifications.
			out := filepath.Join(t.TempDir(), "audit-1.jsonl.gz")
			r = mustThiqa(t, env, "audit", "archive", "--data", dir, "--through", m[1], "--out", out)
			if strings.Contains(r.stdout, "before the notifier reached them") {
				t.Fatalf("audit archive after retire:\n%s", r.stdout)
			}
			mustThiqa(t, env, "audit", "verify", "--data", dir, "--archive", out)
		})
	}
}
