package main

import (
	"bytes"
	"crypto/sha256"
	"io"
	"math/big"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/thiqa/thiqa/internal/testenv"
	"github.com/thiqa/thiqa/timestamp/tsp"
)

// stampRaw posts a time-stamp request to srv's /tsa and returns the HTTP
// status, the Retry-After and the reply's status.
func stampRaw(t *testing.T, srv *server) (int, string, tsp.PKIStatus) {
	t.Helper()
	sum := sha256.Sum256([]byte("a document\n"))
	der, err := (&tsp.Request{MessageImprint: tsp.MessageImprint{HashAlgorithm: tsp.OIDSHA256, HashedMessage: sum[:]}, Nonce: big.NewInt(9), CertReq: true}).Marshal()
	if err != nil {
		t.Fatal(err)
	}
	resp, err := http.Post(srv.base+"/tsa", "application/timestamp-query", bytes.NewReader(der))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	r, err := tsp.ParseResponse(body)
	if err != nil {
		t.Fatalf("POST /tsa: %d %q: %v", resp.StatusCode, body, err)
	}
	return resp.StatusCode, resp.Header.Get("Retry-After"), r.Status.Status
}

// TestServeOnFullDisk runs `thiqa serve` on a data folder whose disk
// fills up (SQLite, the default store): the TSA answers "try again later"
// (systemFailure with 503 and Retry-After) as in a database outage, not
// systemFailure with 200; /readyz fails naming the disk; the log says so
// once, not per request; once space is freed everything works again
// without a restart, the audit chain verifies, and the server restarts.
func TestServeOnFullDisk(t *testing.T) {
	disk := testenv.NewSmallDisk(t, 48<<20)
	dir := filepath.Join(disk.Dir, "data")
	initData(t, dir)
	srv := startServer(t, dir, nil)
	if code, _, st := stampRaw(t, srv); code != http.StatusOK || st != tsp.StatusGranted {
		t.Fatalf("before the disk fills: %d %v", code, st)
	}

	disk.Fill(t)
	unavailable := 0
	for i := 0; i < 2000 && unavailable < 50; i++ {
		code, retry, st := stampRaw(t, srv)
		switch {
		case code == http.StatusOK && st == tsp.StatusGranted: // the WAL's free pages took it
		case code == http.StatusServiceUnavailable && st == tsp.StatusRejection && retry != "":
			unavailable++
		default:
			t.Fatalf("time-stamp %d on a full disk: HTTP %d, Retry-After %q, status %v; want 503 try again later", i, code, retry, st)
		}
	}
	if unavailable == 0 {
		t.Fatal("2000 time-stamps granted on a full disk")
	}
	if code, _, body := srv.get(t, "/readyz", ""); code != http.StatusServiceUnavailable || !strings.Contains(string(body), "disk full") {
		t.Errorf("/readyz on a full disk: %d %s", code, body)
	}
	logs := srv.stderr.String()
	if n := strings.Count(logs, "the database cannot be written"); n != 1 {
		t.Errorf("%d lines say the database cannot be written, want 1", n)
	}
	if n := strings.Count(logs, `"msg":"recording a time-stamp token"`) + strings.Count(logs, `"msg":"allocating a time-stamp serial"`); n > 2 {
		t.Errorf("%d error lines for %d refused time-stamps: the log is flooded", n, unavailable)
	}

	disk.Free(t)
	deadline := time.Now().Add(10 * time.Second)
	for {
		code, _, body := srv.get(t, "/readyz", "")
		if code == http.StatusOK {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("/readyz after space was freed: %d %s", code, body)
		}
		time.Sleep(100 * time.Millisecond)
	}
	if code, _, st := stampRaw(t, srv); code != http.StatusOK || st != tsp.StatusGranted {
		t.Fatalf("after space was freed: %d %v", code, st)
	}
	if !strings.Contains(srv.stderr.String(), "the database can be written again") {
		t.Error("the log does not say that the database can be written again")
	}
	srv.stop(t)
	if out := mustThiqa(t, nil, "audit", "verify", "--data", dir); !strings.Contains(out.stdout, "audit chain OK") {
		t.Fatalf("audit verify: %s", out.stdout)
	}
	again := startServer(t, dir, nil)
	if code, _, st := stampRaw(t, again); code != http.StatusOK || st != tsp.StatusGranted {
		t.Fatalf("after a restart: %d %v", code, st)
	}
	again.stop(t)
}
