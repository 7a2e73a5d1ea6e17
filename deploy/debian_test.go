package deploy

import (
	"bufio"
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"io/fs"
	"net/http"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/thiqa/thiqa/internal/testenv"
)

// What the package installs and creates.
const (
	debData    = "/var/lib/thiqa"
	debConf    = "/etc/thiqa/thiqa.yaml"
	debUnit    = "/lib/systemd/system/thiqa.service"
	debBin     = "/usr/bin/thiqa"
	debLockDir = "/run/lock"
)

// TestDebianPackage builds the package with scripts/build-deb.sh, installs
// it with dpkg -i, prepares the data folder as the docs say (runuser -u
// thiqa -- thiqa init), starts the server the way the unit does (its
// ExecStart as its User), checks /readyz, stops it, then removes and purges
// the package: remove keeps configuration and data, purge removes what the
// package created and keeps the token and the database, a reinstall finds
// them untouched, and a purge with THIQA_PURGE_DATA=yes leaves the machine
// as it was. It needs root; it refuses to run on a machine that already
// has a thiqa installation, user or data folder.
func TestDebianPackage(t *testing.T) {
	if os.Geteuid() != 0 {
		if strict() {
			t.Fatal("the package test installs with dpkg and needs root")
		}
		t.Skip("the package test installs with dpkg and needs root (CI runs it)")
	}
	testenv.PKCS11Module(t)
	for _, tool := range []string{"dpkg", "dpkg-deb", "dpkg-shlibdeps", "dpkg-statoverride", "runuser", "adduser"} {
		testenv.Tool(t, tool)
	}
	unlock := lockMachine(t)
	defer unlock()
	requireNoInstallation(t)
	t.Cleanup(func() { forgetInstallation(t) })

	bin := thiqaBinary(t)
	out := t.TempDir()
	deb := lastLine(run(t, nil, filepath.Join(repoRoot(t), "scripts", "build-deb.sh"),
		"--bin", bin, "--version", testVersion, "--out", out, "--compress", "none"))
	if filepath.Base(deb) != "thiqa_"+testVersion+"_"+strings.TrimSpace(run(t, nil, "dpkg", "--print-architecture"))+".deb" {
		t.Fatalf("package file %s", deb)
	}
	checkControl(t, deb)

	dpkg(t, nil, "-i", deb)
	if v := strings.SplitN(run(t, nil, debBin, "version"), "\n", 2)[0]; v != "thiqa "+testVersion {
		t.Fatalf("installed binary: %q", v)
	}
	uid, gid := checkInstalled(t)
	verifyUnit(t)
	unit := readUnit(t)

	// The operator's steps (README.Debian): on this machine no NTP daemon
	// disciplines the clock, so the TSA clock is declared, as documented.
	conf := mustRead(t, debConf)
	if !strings.Contains(conf, "source: kernel") {
		t.Fatalf("packaged configuration does not use the kernel clock:\n%s", conf)
	}
	if err := os.WriteFile(debConf, []byte(strings.Replace(conf, "source: kernel", "source: static", 1)), 0o640); err != nil {
		t.Fatal(err)
	}
	run(t, nil, "runuser", "-u", "thiqa", "--", "thiqa", "config", "check", "--data", debData)
	run(t, nil, "runuser", "-u", "thiqa", "--", "thiqa", "init", "--data", debData)
	owned(t, filepath.Join(debData, "tokens"), uid, 0o700)
	owned(t, filepath.Join(debData, "thiqa.db"), uid, 0o600)
	owned(t, filepath.Join(debData, "secrets", "user.pin"), uid, 0o600)

	base, stop := serveLikeTheUnit(t, unit, uid, gid)
	resp, err := http.Get(base + "/readyz")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("/readyz: %d", resp.StatusCode)
	}
	stop()

	kept := fingerprint(t, debData)
	dpkg(t, nil, "-r", "thiqa")
	for _, gone := range []string{debBin, debUnit} {
		if _, err := os.Lstat(gone); !errors.Is(err, fs.ErrNotExist) {
			t.Errorf("after dpkg -r, %s is still there", gone)
		}
	}
	if !strings.Contains(mustRead(t, debConf), "source: static") {
		t.Error("dpkg -r did not keep the edited configuration")
	}
	if _, err := user.Lookup("thiqa"); err != nil {
		t.Error("dpkg -r removed the user")
	}
	sameData(t, kept, fingerprint(t, debData), "dpkg -r")

	dpkg(t, nil, "--purge", "thiqa")
	for _, gone := range []string{"/etc/thiqa", filepath.Join(debData, "thiqa.yaml")} {
		if _, err := os.Lstat(gone); !errors.Is(err, fs.ErrNotExist) {
			t.Errorf("after dpkg --purge, %s is still there", gone)
		}
	}
	if o, _ := runErr(nil, "dpkg-statoverride", "--list", debConf); strings.TrimSpace(o) != "" {
		t.Errorf("after dpkg --purge, a stat override is left: %s", o)
	}
	if o, _ := runErr(nil, "dpkg-query", "-W", "-f", "${Status}", "thiqa"); strings.Contains(o, "installed") {
		t.Errorf("after dpkg --purge: %s", o)
	}
	delete(kept, "thiqa.yaml")
	sameData(t, kept, fingerprint(t, debData), "dpkg --purge")
	if _, err := user.Lookup("thiqa"); err != nil {
		t.Error("dpkg --purge removed the user that owns the kept data folder")
	}

	// A reinstall finds the token and the database as they were.
	dpkg(t, nil, "-i", deb)
	kept["thiqa.yaml"] = "link to " + debConf
	sameData(t, kept, fingerprint(t, debData), "reinstalling")

	// The operator asks for the data to go: nothing is left.
	dpkg(t, []string{"THIQA_PURGE_DATA=yes"}, "--purge", "thiqa")
	for _, gone := range []string{debData, "/etc/thiqa", debBin, debUnit} {
		if _, err := os.Lstat(gone); !errors.Is(err, fs.ErrNotExist) {
			t.Errorf("after THIQA_PURGE_DATA=yes dpkg --purge, %s is still there", gone)
		}
	}
	if _, err := user.Lookup("thiqa"); err == nil {
		t.Error("after THIQA_PURGE_DATA=yes dpkg --purge, the user thiqa is still there")
	}
	if _, err := user.LookupGroup("thiqa"); err == nil {
		t.Error("after THIQA_PURGE_DATA=yes dpkg --purge, the group thiqa is still there")
	}
}

// lockMachine serialises the package tests of every checkout on this
// machine (they install the same package) for up to five minutes.
func lockMachine(t *testing.T) func() {
	t.Helper()
	f, err := os.OpenFile(filepath.Join(debLockDir, "thiqa-package-test.lock"), os.O_CREATE|os.O_RDWR, 0o600)
	if err != nil {
		t.Fatal(err)
	}
	for deadline := time.Now().Add(5 * time.Minute); ; time.Sleep(time.Second) {
		err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB)
		if err == nil {
			break
		}
		if time.Now().After(deadline) {
			f.Close()
			t.Fatalf("another package test holds %s: %v", f.Name(), err)
		}
	}
	return func() { f.Close() }
}

// requireNoInstallation refuses to run where thiqa is installed or left
// anything: the test would change an operator's installation.
func requireNoInstallation(t *testing.T) {
	t.Helper()
	if o, _ := runErr(nil, "dpkg-query", "-W", "-f", "${Status}", "thiqa"); strings.Contains(o, "installed") {
		t.Fatalf("thiqa is installed on this machine (%s): the package test will not touch it", o)
	}
	for _, p := range []string{debData, "/etc/thiqa", debBin} {
		if _, err := os.Lstat(p); err == nil {
			t.Fatalf("%s exists: the package test will not touch it", p)
		}
	}
	if _, err := user.Lookup("thiqa"); err == nil {
		t.Fatal("a user thiqa exists: the package test will not touch it")
	}
	if _, err := user.LookupGroup("thiqa"); err == nil {
		t.Fatal("a group thiqa exists: the package test will not touch it")
	}
}

// forgetInstallation undoes whatever a failed run left (the machine had
// none of it before, requireNoInstallation made sure).
func forgetInstallation(t *testing.T) {
	if o, _ := runErr(nil, "dpkg-query", "-W", "-f", "${Status}", "thiqa"); strings.Contains(o, "installed") {
		if o, err := runErr([]string{"THIQA_PURGE_DATA=yes"}, "dpkg", "--purge", "thiqa"); err != nil {
			t.Logf("cleaning up: dpkg --purge: %v\n%s", err, o)
		}
	}
	if o, _ := runErr(nil, "dpkg-statoverride", "--list", debConf); strings.TrimSpace(o) != "" {
		_, _ = runErr(nil, "dpkg-statoverride", "--remove", debConf)
	}
	os.RemoveAll(debData)
	os.RemoveAll("/etc/thiqa")
	if _, err := user.Lookup("thiqa"); err == nil {
		_, _ = runErr(nil, "userdel", "thiqa")
	}
	if _, err := user.LookupGroup("thiqa"); err == nil {
		_, _ = runErr(nil, "groupdel", "thiqa")
	}
}

// dpkg runs dpkg, waiting while another dpkg or apt holds its lock.
func dpkg(t *testing.T, env []string, args ...string) string {
	t.Helper()
	for deadline := time.Now().Add(2 * time.Minute); ; time.Sleep(2 * time.Second) {
		out, err := runErr(env, "dpkg", args...)
		if err == nil {
			return out
		}
		if !strings.Contains(out, "lock") || time.Now().After(deadline) {
			t.Fatalf("dpkg %s: %v\n%s", strings.Join(args, " "), err, out)
		}
	}
}

// checkControl checks the package's metadata and file list.
func checkControl(t *testing.T, deb string) {
	t.Helper()
	info := run(t, nil, "dpkg-deb", "-f", deb)
	for _, want := range []string{"Package: thiqa", "Version: " + testVersion, "Recommends: postgresql-client"} {
		if !strings.Contains(info, want+"\n") {
			t.Errorf("control has no %q:\n%s", want, info)
		}
	}
	dep := run(t, nil, "dpkg-deb", "-f", deb, "Depends")
	for _, want := range []string{"libc6 (>= ", "softhsm2", "adduser"} {
		if !strings.Contains(dep, want) {
			t.Errorf("Depends %q lacks %s", dep, want)
		}
	}
	if cf := run(t, nil, "dpkg-deb", "-I", deb, "conffiles"); cf != debConf+"\n" {
		t.Errorf("conffiles: %q", cf)
	}
	list := run(t, nil, "dpkg-deb", "-c", deb)
	for _, f := range []struct{ mode, path string }{
		{"-rwxr-xr-x root/root", "./usr/bin/thiqa"},
		{"-rw-r--r-- root/root", "./lib/systemd/system/thiqa.service"},
		{"-rw-r----- root/root", "./etc/thiqa/thiqa.yaml"},
		{"-rw-r--r-- root/root", "./usr/share/thiqa/monitoring/thiqa-rules.yml"},
		{"-rw-r--r-- root/root", "./usr/share/thiqa/monitoring/thiqa-grafana.json"},
		{"-rw-r--r-- root/root", "./usr/share/doc/thiqa/README.Debian"},
	} {
		if !regexp.MustCompile(`(?m)^` + regexp.QuoteMeta(f.mode) + ` .* ` + regexp.QuoteMeta(f.path) + `$`).MatchString(list) {
			t.Errorf("package lacks %s %s:\n%s", f.mode, f.path, list)
		}
	}
}

// checkInstalled checks what postinst created and returns the user's ids.
func checkInstalled(t *testing.T) (uid, gid int) {
	t.Helper()
	u, err := user.Lookup("thiqa")
	if err != nil {
		t.Fatal("postinst created no user thiqa")
	}
	uid, _ = strconv.Atoi(u.Uid)
	gid, _ = strconv.Atoi(u.Gid)
	if u.HomeDir != debData {
		t.Errorf("home of thiqa: %s", u.HomeDir)
	}
	if uid >= 1000 {
		t.Errorf("thiqa is not a system user: uid %d", uid)
	}
	passwd := mustRead(t, "/etc/passwd")
	if !strings.Contains(passwd, ":"+debData+":/usr/sbin/nologin\n") {
		t.Error("the user thiqa can log in")
	}
	owned(t, debData, uid, 0o700)
	fi, err := os.Stat(debConf)
	if err != nil {
		t.Fatal(err)
	}
	if st := fi.Sys().(*syscall.Stat_t); st.Uid != 0 || int(st.Gid) != gid || fi.Mode().Perm() != 0o640 {
		t.Errorf("%s: uid %d gid %d mode %o, want root:thiqa 0640", debConf, st.Uid, st.Gid, fi.Mode().Perm())
	}
	if l, err := os.Readlink(filepath.Join(debData, "thiqa.yaml")); err != nil || l != debConf {
		t.Errorf("%s/thiqa.yaml: %q %v, want a link to %s", debData, l, err, debConf)
	}
	return uid, gid
}

// owned checks a path's owner and permissions.
func owned(t *testing.T, path string, uid int, perm fs.FileMode) {
	t.Helper()
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if st := fi.Sys().(*syscall.Stat_t); int(st.Uid) != uid || fi.Mode().Perm() != perm {
		t.Errorf("%s: owner %d mode %o, want %d %o", path, st.Uid, fi.Mode().Perm(), uid, perm)
	}
}

// verifyUnit runs systemd-analyze verify on the installed unit where
// systemd is installed.
func verifyUnit(t *testing.T) {
	t.Helper()
	sa, err := exec.LookPath("systemd-analyze")
	if err != nil {
		t.Log("systemd-analyze not installed: unit not verified")
		return
	}
	if out, err := runErr(nil, sa, "verify", debUnit); err != nil || strings.TrimSpace(out) != "" {
		t.Errorf("systemd-analyze verify %s: %v\n%s", debUnit, err, out)
	}
}

// readUnit returns the installed unit's settings (last value wins) and
// checks the hardening it must have.
func readUnit(t *testing.T) map[string]string {
	t.Helper()
	u := map[string]string{}
	sc := bufio.NewScanner(strings.NewReader(mustRead(t, debUnit)))
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") || strings.HasPrefix(line, "[") {
			continue
		}
		k, v, _ := strings.Cut(line, "=")
		u[k] = v
	}
	for k, want := range map[string]string{
		"User": "thiqa", "Group": "thiqa", "StateDirectory": "thiqa", "StateDirectoryMode": "0700",
		"ExecStart": debBin + " serve --data " + debData, "Restart": "on-failure",
		"NoNewPrivileges": "yes", "ProtectSystem": "strict", "ProtectHome": "yes", "PrivateTmp": "yes",
		"CapabilityBoundingSet": "", "AmbientCapabilities": "", "ReadWritePaths": debData,
	} {
		if got, ok := u[k]; !ok || got != want {
			t.Errorf("unit: %s=%q, want %q", k, got, want)
		}
	}
	return u
}

// serveLikeTheUnit runs the unit's ExecStart as its User and Group, in its
// WorkingDirectory, with an empty environment (systemd passes none), on a
// free port (the configured 8080 may be taken here). It returns the base
// URL and a function that stops the server as systemd does (SIGTERM).
func serveLikeTheUnit(t *testing.T, unit map[string]string, uid, gid int) (string, func()) {
	t.Helper()
	readyDir, err := os.MkdirTemp("", "thiqa-unit-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(readyDir) })
	if err := os.Chown(readyDir, uid, gid); err != nil {
		t.Fatal(err)
	}
	ready := filepath.Join(readyDir, "ready")
	argv := append(strings.Fields(unit["ExecStart"]), "--addr", "127.0.0.1:0", "--ready-file", ready)
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Dir = unit["WorkingDirectory"]
	cmd.Env = []string{"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"}
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid), Groups: []uint32{}}}
	var errb bytes.Buffer
	cmd.Stderr = &errb
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	stopped := false
	stop := func() {
		if stopped {
			return
		}
		stopped = true
		_ = cmd.Process.Signal(syscall.SIGTERM)
		done := make(chan error, 1)
		go func() { done <- cmd.Wait() }()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("thiqa serve did not stop cleanly: %v\n%s", err, errb.String())
			}
		case <-time.After(45 * time.Second): // the unit's TimeoutStopSec
			_ = cmd.Process.Kill()
			<-done
			t.Error("thiqa serve did not stop within TimeoutStopSec")
		}
	}
	t.Cleanup(stop)
	return waitReady(t, ready, &errb), stop
}

// fingerprint hashes every file of a folder (links by their target), by
// path relative to it.
func fingerprint(t *testing.T, dir string) map[string]string {
	t.Helper()
	out := map[string]string{}
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(dir, p)
		switch {
		case d.Type()&fs.ModeSymlink != 0:
			l, err := os.Readlink(p)
			out[rel] = "link to " + l
			return err
		case d.Type().IsRegular():
			raw, err := os.ReadFile(p)
			sum := sha256.Sum256(raw)
			out[rel] = hex.EncodeToString(sum[:])
			return err
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// sameData fails unless the data folder still holds the same files with
// the same content, and the token and the database among them.
func sameData(t *testing.T, before, after map[string]string, step string) {
	t.Helper()
	for _, must := range []string{"thiqa.db", "secrets/user.pin", "secrets/so.pin"} {
		if before[must] == "" {
			t.Fatalf("the data folder has no %s", must)
		}
	}
	tokens := 0
	for p := range before {
		if strings.HasPrefix(p, "tokens/") {
			tokens++
		}
	}
	if tokens == 0 {
		t.Fatal("the data folder holds no token files")
	}
	for p, h := range before {
		if after[p] != h {
			t.Errorf("%s changed %s/%s", step, debData, p)
		}
	}
	for p := range after {
		if _, ok := before[p]; !ok {
			t.Errorf("%s added %s/%s", step, debData, p)
		}
	}
}
