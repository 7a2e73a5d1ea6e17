package main

import (
	"crypto/x509"
	"encoding/pem"
	"fmt"
	"math/big"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/thiqa/thiqa/ca"
	"github.com/thiqa/thiqa/ca/crl"
	"github.com/thiqa/thiqa/ca/revocation"
	"github.com/thiqa/thiqa/internal/testenv"
)

// TestCRLPartitionsOnSQLite and TestCRLPartitionsOnPostgres: a deployment
// moves from one CRL to four partitions per CA. A certificate issued before
// keeps naming citizen.crl, which stays published; each new certificate
// names citizen-{n}.crl for its partition. After revocations across the
// partitions every CRL verifies with openssl crl, carries a critical
// issuingDistributionPoint naming itself, and lists exactly the revoked
// certificates that name it, which is what OCSP (openssl ocsp) answers; a
// partition that does not exist is 404, and partition counts out of range
// are refused with the range named.
func TestCRLPartitionsOnSQLite(t *testing.T)   { runCRLPartitions(t, false) }
func TestCRLPartitionsOnPostgres(t *testing.T) { runCRLPartitions(t, true) }

func runCRLPartitions(t *testing.T, postgres bool) {
	dir := filepath.Join(t.TempDir(), "data")
	tmp := t.TempDir()
	var env []string
	if postgres {
		env = []string{"THIQA_TEST_DSN=" + testenv.PostgresDSN(t)}
		conf := editedConfig(t, dir, func(y string) string {
			return strings.Replace(y, "driver: sqlite\n  dsn: thiqa.db\n  dsnEnv: \"\"", "driver: postgres\n  dsn: \"\"\n  dsnEnv: THIQA_TEST_DSN", 1)
		})
		mustThiqa(t, env, "init", "--data", dir, "--config", conf)
	} else {
		initData(t, dir) // what `thiqa init --data dir` makes
	}
	cfgPath := filepath.Join(dir, "thiqa.yaml")
	setPartitions := func(n string) {
		t.Helper()
		y := mustRead(t, cfgPath)
		i := strings.Index(y, "    partitions: ")
		if i < 0 {
			t.Fatalf("thiqa.yaml has no revocation.crl.partitions")
		}
		j := i + strings.IndexByte(y[i:], '\n')
		writeFile(t, cfgPath, y[:i]+"    partitions: "+n+y[j:])
	}
	// Revocations reach the CRLs after revocation.crl.triggerDelay (2 s by
	// default): the test waits for them, so a short debounce.
	y := mustRead(t, cfgPath)
	if !strings.Contains(y, "    triggerDelay: 2s\n") {
		t.Fatal("thiqa.yaml has no revocation.crl.triggerDelay")
	}
	writeFile(t, cfgPath, strings.Replace(y, "    triggerDelay: 2s\n", "    triggerDelay: 100ms\n", 1))
	officer := lastLine(mustThiqa(t, env, "token", "--data", dir, "--subject", "officer-3", "--role", "registration-officer").stdout)
	type leaf struct {
		serial, file, crl string // crl: the file name the distribution point names
	}
	issue := func(srv *server, civil string) leaf {
		t.Helper()
		sub := citizenSubject()
		sub["civilNumber"] = civil
		out := issueOK(t, srv, officer, ca.IssueRequest{Profile: "citizen-auth", Subject: sub, CSR: newTestCSR(t)})
		l := leaf{serial: out.Serial, file: filepath.Join(tmp, out.Serial+".pem")}
		writeFile(t, l.file, out.Certificate)
		blk, _ := pem.Decode([]byte(out.Certificate))
		c, err := x509.ParseCertificate(blk.Bytes)
		if err != nil || len(c.CRLDistributionPoints) != 1 {
			t.Fatalf("certificate %s: %v %v", out.Serial, err, c.CRLDistributionPoints)
		}
		u, _ := url.Parse(c.CRLDistributionPoints[0])
		l.crl = strings.TrimPrefix(u.Path, "/crl/")
		return l
	}

	// One partition: the certificate names citizen.crl.
	srv := startServer(t, dir, env)
	legacy := issue(srv, "10000000")
	if legacy.crl != "citizen.crl" {
		t.Fatalf("with one partition the certificate names %s", legacy.crl)
	}
	srv.stop(t)

	// Bad counts: refused with the range named, the server does not start.
	for _, bad := range []string{"0", "5000", "-1"} {
		setPartitions(bad)
		r := thiqa(t, env, "config", "check", "--data", dir)
		if r.code == 0 || !strings.Contains(r.stderr, "partitions") || !strings.Contains(r.stderr, "1 to 1024") {
			t.Fatalf("partitions: %s: exit %d %s", bad, r.code, r.stderr)
		}
		if r := thiqa(t, env, "serve", "--data", dir, "--addr", "127.0.0.1:0"); r.code == 0 || !strings.Contains(r.stderr, "1 to 1024") {
			t.Fatalf("serve with partitions: %s: exit %d %s", bad, r.code, r.stderr)
		}
	}

	// Four partitions.
	setPartitions("4")
	mustThiqa(t, env, "config", "check", "--data", dir)
	srv = startServer(t, dir, env)
	var leaves []leaf
	seen := map[string]bool{}
	for i := 0; i < 40 && (len(leaves) < 8 || len(seen) < 4); i++ {
		l := issue(srv, fmt.Sprintf("%08d", 20000000+i))
		serial, _ := revocation.NormalizeSerial(l.serial)
		n, _ := new(big.Int).SetString(serial, 16)
		if want := fmt.Sprintf("citizen-%d.crl", crl.Partition(n, 4)); l.crl != want {
			t.Fatalf("certificate %s names %s, want %s", l.serial, l.crl, want)
		}
		seen[l.crl] = true
		leaves = append(leaves, l)
	}
	if len(seen) != 4 {
		t.Fatalf("%d certificates fill only %v", len(leaves), seen)
	}
	// Revoke the old certificate and one certificate of every partition.
	revoked := map[string]bool{legacy.serial: true}
	done := map[string]bool{}
	for _, l := range leaves {
		if done[l.crl] {
			continue
		}
		done[l.crl], revoked[l.serial] = true, true
	}
	for s := range revoked {
		code, body := srv.post(t, "/api/v1/certificates/"+s+"/revoke", officer, revocation.RevokeRequest{Reason: "superseded"})
		if code != http.StatusOK {
			t.Fatalf("revoke %s: %d %s", s, code, body)
		}
	}
	all := append([]leaf{legacy}, leaves...)

	// Every partition CRL: verified, its IDP naming itself, its entries
	// exactly the revoked certificates that name it.
	openssl := testenv.Tool(t, "openssl")
	chain := filepath.Join(tmp, "chain.pem")
	writeFile(t, chain, mustRead(t, filepath.Join(dir, "ca", "root.pem"))+mustRead(t, filepath.Join(dir, "ca", "citizen.pem")))
	names := []string{"citizen.crl", "citizen-1.crl", "citizen-2.crl", "citizen-3.crl", "citizen-4.crl"}
	listed := map[string]string{} // serial → the CRL listing it
	waitFor(t, 30*time.Second, func() string {
		clear(listed)
		for _, name := range names {
			code, _, body := srv.get(t, "/crl/"+name, "")
			if code != http.StatusOK {
				return fmt.Sprintf("GET /crl/%s: %d", name, code)
			}
			path := filepath.Join(tmp, name)
			if err := os.WriteFile(path, body, 0o600); err != nil {
				t.Fatal(err)
			}
			rl, err := x509.ParseRevocationList(body)
			if err != nil {
				t.Fatal(err)
			}
			for _, e := range rl.RevokedCertificateEntries {
				listed[fmt.Sprintf("%x", e.SerialNumber)] = name
			}
		}
		for s := range revoked {
			if listed[strings.TrimLeft(s, "0")] == "" {
				return "not every revocation is on a CRL yet"
			}
		}
		return ""
	})
	for _, name := range names {
		path := filepath.Join(tmp, name)
		out, err := exec.Command(openssl, "crl", "-inform", "DER", "-in", path, "-CAfile", chain, "-noout").CombinedOutput()
		if err != nil || !strings.Contains(string(out), "verify OK") {
			t.Fatalf("openssl crl %s: %v\n%s", name, err, out)
		}
		text, _ := exec.Command(openssl, "crl", "-inform", "DER", "-in", path, "-noout", "-text").CombinedOutput()
		if !strings.Contains(string(text), "X509v3 Issuing Distribution Point: critical") || !strings.Contains(string(text), "/crl/"+name) {
			t.Fatalf("%s does not name itself in a critical IDP:\n%s", name, text)
		}
	}
	for _, l := range all {
		onCRL := listed[strings.TrimLeft(l.serial, "0")]
		if revoked[l.serial] != (onCRL != "") || (onCRL != "" && onCRL != l.crl) {
			t.Fatalf("certificate %s (names %s, revoked %v) is on %q", l.serial, l.crl, revoked[l.serial], onCRL)
		}
		args := []string{"ocsp", "-issuer", filepath.Join(dir, "ca", "citizen.pem"), "-url", srv.base + "/ocsp", "-CAfile", filepath.Join(dir, "ca", "root.pem"),
			"-VAfile", filepath.Join(dir, "ca", "ocsp-citizen.pem"), "-nonce", "-cert", l.file}
		out, err := exec.Command(openssl, args...).CombinedOutput()
		if err != nil || !strings.Contains(string(out), "Response verify OK") {
			t.Fatalf("openssl ocsp: %v\n%s", err, out)
		}
		want := "good"
		if revoked[l.serial] {
			want = "revoked (superseded)"
		}
		if got := ocspLine(string(out), l.file); got != want {
			t.Fatalf("OCSP says %q for %s, the CRLs %q", got, l.serial, onCRL)
		}
		// openssl verify with the CRL the certificate names agrees too.
		crlPEM := filepath.Join(tmp, l.crl+".pem")
		der, _ := os.ReadFile(filepath.Join(tmp, l.crl))
		writeFile(t, crlPEM, string(pem.EncodeToMemory(&pem.Block{Type: "X509 CRL", Bytes: der})))
		vout, _ := exec.Command(openssl, "verify", "-crl_check", "-CAfile", chain, "-CRLfile", crlPEM, l.file).CombinedOutput()
		if revoked[l.serial] != strings.Contains(string(vout), "certificate revoked") {
			t.Fatalf("openssl verify -crl_check for %s with %s:\n%s", l.serial, l.crl, vout)
		}
	}
	// Partitions that do not exist, and deltas while they are off.
	for _, name := range []string{"citizen-0.crl", "citizen-5.crl", "citizen-01.crl", "nosuch-1.crl", "citizen-1-delta.crl"} {
		if code, _, body := srv.get(t, "/crl/"+name, ""); code != http.StatusNotFound {
			t.Fatalf("GET /crl/%s: %d %s", name, code, body)
		}
	}
	srv.stop(t)

	// Delta CRLs: a revocation after the complete CRLs were published is
	// on its partition's delta (and not yet on the complete CRL, which
	// relying parties hold until the schedule renews it); openssl verify
	// -use_deltas sees it revoked.
	y = mustRead(t, cfgPath)
	if !strings.Contains(y, "    deltas: false\n") {
		t.Fatal("thiqa.yaml has no revocation.crl.deltas")
	}
	writeFile(t, cfgPath, strings.Replace(y, "    deltas: false\n", "    deltas: true\n", 1))
	srv = startServer(t, dir, env)
	var target leaf
	for _, l := range leaves {
		if !revoked[l.serial] {
			target = l
			break
		}
	}
	deltaName := strings.TrimSuffix(target.crl, ".crl") + "-delta.crl"
	var baseDER []byte
	waitFor(t, 30*time.Second, func() string {
		var code int
		if code, _, baseDER = srv.get(t, "/crl/"+target.crl, ""); code != http.StatusOK {
			return "the complete CRLs are not published yet"
		}
		return ""
	})
	if code, body := srv.post(t, "/api/v1/certificates/"+target.serial+"/revoke", officer, revocation.RevokeRequest{Reason: "keyCompromise"}); code != http.StatusOK {
		t.Fatalf("revoke: %d %s", code, body)
	}
	var deltaDER []byte
	waitFor(t, 30*time.Second, func() string {
		code, _, body := srv.get(t, "/crl/"+deltaName, "")
		if code != http.StatusOK {
			return fmt.Sprintf("GET /crl/%s: %d", deltaName, code)
		}
		rl, err := x509.ParseRevocationList(body)
		if err != nil {
			t.Fatal(err)
		}
		for _, e := range rl.RevokedCertificateEntries {
			if fmt.Sprintf("%x", e.SerialNumber) == strings.TrimLeft(target.serial, "0") {
				deltaDER = body
				return ""
			}
		}
		return deltaName + " does not list the revocation yet"
	})
	if _, _, now := srv.get(t, "/crl/"+target.crl, ""); string(now) != string(baseDER) {
		t.Fatal("the complete CRL changed after a revocation with deltas on")
	}
	basePEM, deltaPEM := filepath.Join(tmp, "base.pem"), filepath.Join(tmp, "delta.pem")
	writeFile(t, basePEM, string(pem.EncodeToMemory(&pem.Block{Type: "X509 CRL", Bytes: baseDER})))
	writeFile(t, deltaPEM, string(pem.EncodeToMemory(&pem.Block{Type: "X509 CRL", Bytes: deltaDER})))
	vout, _ := exec.Command(openssl, "verify", "-crl_check", "-use_deltas", "-CAfile", chain, "-CRLfile", basePEM, "-CRLfile", deltaPEM, target.file).CombinedOutput()
	if !strings.Contains(string(vout), "certificate revoked") {
		t.Fatalf("openssl verify -use_deltas:\n%s", vout)
	}
	text, _ := exec.Command(openssl, "crl", "-in", deltaPEM, "-noout", "-text").CombinedOutput()
	if !strings.Contains(string(text), "Delta CRL Indicator: critical") {
		t.Fatalf("delta CRL:\n%s", text)
	}
	srv.stop(t)
}
