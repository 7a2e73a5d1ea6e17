package deploy

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/thiqa/thiqa/internal/testenv"
)

// benchLock is the machine's lock for load tests: a load test run while
// someone measures would spoil their figures (and be slowed by them).
const benchLock = "/tmp/thiqa-bench.lock"

// holdBenchLock takes benchLock, waiting at most wait; it goes on without
// the lock after that (logged), so that a forgotten lock cannot block CI.
func holdBenchLock(t *testing.T, wait time.Duration) {
	t.Helper()
	f, err := os.OpenFile(benchLock, os.O_RDWR|os.O_CREATE, 0o666)
	if err != nil {
		t.Logf("not taking %s: %v", benchLock, err)
		return
	}
	deadline := time.Now().Add(wait)
	for syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB) != nil {
		if time.Now().After(deadline) {
			t.Logf("%s is still held after %s: running anyway", benchLock, wait)
			f.Close()
			return
		}
		time.Sleep(time.Second)
	}
	t.Cleanup(func() { f.Close() })
}

// TestClusterFailover runs scripts/cluster.sh failover-test: a durable
// PostgreSQL, three thiqa serve nodes on one token directory behind
// HAProxy; TSA, seal and issuance load while node 2 is killed with SIGKILL
// and restarted. Before the load, one browser walks the officer console
// through HAProxy (sign-in page, form posts, sign-in, pages, sign-out): the
// portal keeps its sessions in the memory of a node, so every request of
// the walk must reach the node that started the session. The script exits
// 0 only when that walk succeeded, the nodes serve the same CRLs, each
// signed once, at most the in-flight requests failed, no serial was handed out twice, every answer is in the
// audit log and `thiqa audit verify` passes (chain and checkpoints).
func TestClusterFailover(t *testing.T) {
	testenv.PKCS11Module(t)
	testenv.Tool(t, "curl")
	haproxy, err := exec.LookPath("haproxy")
	if err != nil {
		haproxy = "/usr/sbin/haproxy"
	}
	if _, err := os.Stat(haproxy); err != nil {
		t.Fatalf("haproxy is not installed (apt-get install haproxy; make test installs it): %v", err)
	}
	if pg, _ := filepath.Glob("/usr/lib/postgresql/*/bin/initdb"); len(pg) == 0 {
		t.Fatal("PostgreSQL server binaries are not installed (apt-get install postgresql)")
	}
	bin := thiqaBinary(t)
	holdBenchLock(t, 5*time.Minute)
	// Not t.TempDir(): the postgres user must reach the cluster's folder.
	dir, err := os.MkdirTemp("", "thiqa-cluster-")
	if err != nil {
		t.Fatal(err)
	}
	state := filepath.Join(dir, "state")
	t.Cleanup(func() {
		_, _ = runErr([]string{"CLUSTER_DIR=" + state, "THIQA_BIN=" + bin}, filepath.Join(repoRoot(t), "scripts", "cluster.sh"), "down")
		os.RemoveAll(dir)
	})
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}

	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, filepath.Join(repoRoot(t), "scripts", "cluster.sh"), "failover-test")
	cmd.Env = append(os.Environ(), "CLUSTER_DIR="+state, "THIQA_BIN="+bin, "FAILOVER_SECONDS=30", "PATH="+os.Getenv("PATH")+":/usr/sbin:/sbin")
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	start := time.Now()
	err = cmd.Run()
	took := time.Since(start)
	if err != nil {
		t.Fatalf("scripts/cluster.sh failover-test: %v after %s\n%s", err, took.Round(time.Second), out.String())
	}
	text := out.String()
	for _, want := range []string{"portal sessions OK", "failover checks OK", "CRLs OK", "audit chain OK", "audit checkpoints OK", "failover test passed"} {
		if !strings.Contains(text, want) {
			t.Fatalf("the failover test's output lacks %q:\n%s", want, text)
		}
	}
	for _, line := range strings.Split(text, "\n") {
		if strings.Contains(line, "portal") {
			t.Log(line)
		}
	}
	m := regexp.MustCompile(`requests\s+(\d+) in \S+ \(\d+/s\), (\d+) failed`).FindStringSubmatch(text)
	if m == nil {
		t.Fatalf("no request count in:\n%s", text)
	}
	t.Logf("failover: %s requests, %s failed; the whole test took %s", m[1], m[2], took.Round(time.Second))
	if took > 3*time.Minute {
		t.Fatalf("the failover test took %s, more than 3 minutes", took)
	}
}
