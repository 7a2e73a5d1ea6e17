package hierarchy

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"fmt"
	"math/big"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/thiqa/thiqa/ca/crl"
	"github.com/thiqa/thiqa/internal/audit"
)

// errKilled is a step that fails as if the process was killed there.
var errKilled = errors.New("killed")

// retireWorld is a data folder in memory as RetireOnlineRoot sees it: the
// online token, the CRL numbers, the imported CRL, the audit log and the
// configuration, each step logged and each able to fail once (killAt).
type retireWorld struct {
	keys     map[string]KeyInfo // by label
	last     *big.Int
	imported *crl.ImportedCRL
	offline  bool
	records  []audit.Entry
	steps    []string
	killAt   string
	// goneBeforeDelete: another node destroys the key between the
	// listing and the deletion.
	goneBeforeDelete bool
}

func (w *retireWorld) step(name string) error {
	w.steps = append(w.steps, name)
	if w.killAt == name {
		w.killAt = ""
		return fmt.Errorf("%s: %w", name, errKilled)
	}
	return nil
}

func (w *retireWorld) Keys(context.Context) ([]KeyInfo, error) {
	if err := w.step("keys"); err != nil {
		return nil, err
	}
	var out []KeyInfo
	for _, k := range w.keys {
		out = append(out, k)
	}
	slices.SortFunc(out, func(a, b KeyInfo) int { return strings.Compare(a.Label, b.Label) })
	return out, nil
}

func (w *retireWorld) DeleteKey(_ context.Context, label string) error {
	if err := w.step("delete " + label); err != nil {
		return err
	}
	if w.goneBeforeDelete {
		delete(w.keys, label)
	}
	if _, ok := w.keys[label]; !ok {
		return fmt.Errorf("%w: %s", ErrKeyNotFound, label)
	}
	delete(w.keys, label)
	return nil
}

func (w *retireWorld) LastCRLNumber(context.Context, string) (*big.Int, error) {
	return w.last, w.step("last")
}

func (w *retireWorld) SaveImportedCRL(_ context.Context, c *crl.ImportedCRL, _ string, _ time.Time) error {
	if err := w.step("import"); err != nil {
		return err
	}
	if w.imported != nil && bytes.Equal(w.imported.DER, c.DER) {
		return nil
	}
	if w.imported != nil && !c.NewerThan(w.imported) {
		return crl.ErrNotNewer
	}
	w.imported = c
	return nil
}

func (w *retireWorld) ImportedCRL(context.Context, string) (*crl.ImportedCRL, error) {
	if w.imported == nil {
		return nil, crl.ErrNoImported
	}
	return w.imported, nil
}

func (w *retireWorld) Append(_ context.Context, e audit.Entry) (audit.Record, error) {
	if err := w.step("audit " + e.Action); err != nil {
		return audit.Record{}, err
	}
	w.records = append(w.records, e)
	return audit.Record{}, nil
}

func (w *retireWorld) setOffline() (bool, error) {
	if err := w.step("switch"); err != nil {
		return false, err
	}
	changed := !w.offline
	w.offline = true
	return changed, nil
}

// retireFixture is a root whose key is on the online token (with another
// key), the last online CRL number 7 and a proof numbered 1007.
func retireFixture(t *testing.T) (*retireWorld, *x509.Certificate, *crl.ImportedCRL) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "Test Root"}, NotBefore: time.Now().Add(-time.Hour),
		NotAfter: time.Now().Add(time.Hour), IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign | x509.KeyUsageCRLSign}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
	if err != nil {
		t.Fatal(err)
	}
	root, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	other, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	w := &retireWorld{last: big.NewInt(7), keys: map[string]KeyInfo{
		"root-ca": {Label: "root-ca", URI: "pkcs11:token=t;object=root-ca", Public: key.Public()},
		"citizen": {Label: "citizen", URI: "pkcs11:token=t;object=citizen", Public: other.Public()},
	}}
	now := time.Now()
	proof := &crl.ImportedCRL{Issuer: "root", Number: big.NewInt(1007), ThisUpdate: now, NextUpdate: now.Add(90 * 24 * time.Hour), DER: []byte("proof")}
	return w, root, proof
}

// retire runs RetireOnlineRoot on w as the verb does after reading the
// configuration again.
func retire(w *retireWorld, root *x509.Certificate, proof *crl.ImportedCRL) (string, error) {
	var out strings.Builder
	err := RetireOnlineRoot(context.Background(), RetireOnline{
		RootName: "root", Root: root, Offline: w.offline, Dir: "/d", ConfigPath: "/d/thiqa.yaml", Proof: proof, Source: "root.crl",
		Actor: "op", Now: time.Now(), Token: w, Numbers: w, CRLs: w, Audit: w, SetOffline: w.setOffline,
	}, &out)
	return out.String(), err
}

func TestRetireOnlineRootOrder(t *testing.T) {
	w, root, proof := retireFixture(t)
	out, err := retire(w, root, proof)
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"last", "audit ca.crl.import", "import", "keys", "switch", "audit " + ActRootRetireOnline, "delete root-ca"}
	if !slices.Equal(w.steps, want) {
		t.Fatalf("steps %q, want %q", w.steps, want)
	}
	if _, ok := w.keys["root-ca"]; ok || len(w.keys) != 1 || !w.offline || w.imported != proof {
		t.Fatalf("after: keys %v, offline %v, imported %v", w.keys, w.offline, w.imported)
	}
	rec := w.records[1]
	if d := rec.Details.(map[string]any); rec.Object != "pkcs11:token=t;object=root-ca" || d["proofCRL"] != "1007" || d["lastOnlineCRL"] != "7" || d["spkiSHA256"] == nil {
		t.Fatalf("retirement record %+v", rec)
	}
	for _, line := range []string{"root CRL number 1007 imported", "/d/thiqa.yaml: ca.root is now offline", "online root key pkcs11:token=t;object=root-ca destroyed", "next: restart"} {
		if !strings.Contains(out, line) {
			t.Errorf("output lacks %q:\n%s", line, out)
		}
	}
	// Done: a run again changes nothing more.
	w.steps = nil
	out, err = retire(w, root, proof)
	if err != nil || !strings.Contains(out, "the root of /d is offline already and its key is not on the online token") {
		t.Fatalf("run again: %v\n%s", err, out)
	}
}

// TestRetireOnlineRootSameCRLOnce: a run again (or on another node sharing
// the database) with the CRL imported already neither imports it again
// nor records a second ca.crl.import.
func TestRetireOnlineRootSameCRLOnce(t *testing.T) {
	w, root, proof := retireFixture(t)
	if _, err := retire(w, root, proof); err != nil {
		t.Fatal(err)
	}
	w.steps = nil
	out, err := retire(w, root, proof)
	if err != nil || !strings.Contains(out, "root CRL number 1007 imported already") || len(w.records) != 2 || slices.Contains(w.steps, "import") {
		t.Fatalf("run again: %v, records %+v, steps %q\n%s", err, w.records, w.steps, out)
	}
}

func TestRetireOnlineRootNoProof(t *testing.T) {
	for _, n := range []*big.Int{nil, big.NewInt(7), big.NewInt(3)} {
		w, root, proof := retireFixture(t)
		proof.Number = n
		_, err := retire(w, root, proof)
		if !errors.Is(err, ErrNoProof) || !strings.Contains(err.Error(), "nothing was changed") {
			t.Fatalf("number %v: %v", n, err)
		}
		if !slices.Equal(w.steps, []string{"last"}) || len(w.keys) != 2 || w.offline {
			t.Fatalf("number %v: steps %q", n, w.steps)
		}
	}
}

// TestRetireOnlineRootKilled interrupts the retirement at each step and
// runs it again: it ends with the CRL imported, the root offline, the key
// destroyed, and a retirement record written before each deletion.
func TestRetireOnlineRootKilled(t *testing.T) {
	for _, step := range []string{"last", "audit ca.crl.import", "import", "switch", "keys", "audit " + ActRootRetireOnline, "delete root-ca"} {
		t.Run(step, func(t *testing.T) {
			w, root, proof := retireFixture(t)
			w.killAt = step
			if _, err := retire(w, root, proof); !errors.Is(err, errKilled) {
				t.Fatalf("killed at %s: %v", step, err)
			}
			if _, err := retire(w, root, proof); err != nil {
				t.Fatalf("run again: %v (steps %q)", err, w.steps)
			}
			if _, ok := w.keys["root-ca"]; ok || !w.offline || w.imported != proof {
				t.Fatalf("after: keys %v, offline %v, imported %v", w.keys, w.offline, w.imported)
			}
			deleted := -1
			for i, s := range w.steps {
				if s == "delete root-ca" {
					deleted = i
				}
			}
			if i := slices.Index(w.steps, "audit "+ActRootRetireOnline); i < 0 || i > deleted {
				t.Fatalf("no retirement record before the deletion: %q", w.steps)
			}
		})
	}
}

// TestRetireOnlineRootKeyGone: another node sharing the HSM destroyed the
// key, before the listing (the switch is recorded, naming the
// configuration) or between the listing and the deletion (no error).
func TestRetireOnlineRootKeyGone(t *testing.T) {
	w, root, proof := retireFixture(t)
	delete(w.keys, "root-ca")
	out, err := retire(w, root, proof)
	if err != nil || !strings.Contains(out, "the online token holds no key of the root (already destroyed)") {
		t.Fatalf("%v\n%s", err, out)
	}
	if rec := w.records[len(w.records)-1]; rec.Action != ActRootRetireOnline || rec.Object != "/d/thiqa.yaml" || rec.Details.(map[string]any)["key"] != "not on the online token" {
		t.Fatalf("record %+v", rec)
	}

	// Killed at any step and run again, the switch of the folder ends
	// recorded (a record before the switch, so none is lost when the run
	// stops between the two).
	for _, step := range []string{"import", "audit ca.crl.import", "keys", "audit " + ActRootRetireOnline, "switch"} {
		w, root, proof := retireFixture(t)
		delete(w.keys, "root-ca")
		w.killAt = step
		if _, err := retire(w, root, proof); !errors.Is(err, errKilled) {
			t.Fatalf("killed at %s: %v", step, err)
		}
		if out, err := retire(w, root, proof); err != nil {
			t.Fatalf("killed at %s, run again: %v\n%s", step, err, out)
		}
		sw, rec := slices.Index(w.steps, "switch"), slices.Index(w.steps, "audit "+ActRootRetireOnline)
		if !w.offline || rec < 0 || w.records[len(w.records)-1].Action != ActRootRetireOnline {
			t.Fatalf("killed at %s: offline %v, records %+v, steps %q", step, w.offline, w.records, w.steps)
		}
		if sw < rec {
			t.Fatalf("killed at %s: the switch came before its record: %q", step, w.steps)
		}
	}

	w, root, proof = retireFixture(t)
	w.goneBeforeDelete = true
	if out, err := retire(w, root, proof); err != nil || !strings.Contains(out, "destroyed") {
		t.Fatalf("gone before the deletion: %v\n%s", err, out)
	}
}

// TestRetireOnlineRootNewerImported: on a folder offline already, a newer
// root CRL imported since is no refusal.
func TestRetireOnlineRootNewerImported(t *testing.T) {
	w, root, proof := retireFixture(t)
	w.offline = true
	w.imported = &crl.ImportedCRL{Issuer: "root", Number: big.NewInt(1008), DER: []byte("newer")}
	out, err := retire(w, root, proof)
	if err != nil || !strings.Contains(out, "root CRL: a newer one than root.crl is imported already") {
		t.Fatalf("%v\n%s", err, out)
	}
	w.offline = false
	if _, err := retire(w, root, proof); !errors.Is(err, crl.ErrNotNewer) {
		t.Fatalf("online with a newer CRL imported: %v", err)
	}
}

// TestRetireOnlineRootKeyWithoutPublic: a deletion of the root key that
// stopped between its two objects left the private key without its
// public object, so the listing shows no public key for it. The run again
// must not take it for another key and say the root is done with while
// the private root key stays on the online token.
func TestRetireOnlineRootKeyWithoutPublic(t *testing.T) {
	for _, offline := range []bool{true, false} {
		w, root, proof := retireFixture(t)
		w.offline = offline
		k := w.keys["root-ca"]
		k.Public = nil
		w.keys["root-ca"] = k
		out, err := retire(w, root, proof)
		if !errors.Is(err, ErrUnknownKey) || !strings.Contains(err.Error(), "pkcs11:token=t;object=root-ca") {
			t.Fatalf("offline %v: %v\n%s", offline, err, out)
		}
		if w.offline != offline || slices.Contains(w.steps, "switch") || len(w.keys) != 2 {
			t.Fatalf("offline %v: changed: steps %q, keys %v", offline, w.steps, w.keys)
		}
		for _, r := range w.records {
			if r.Action == ActRootRetireOnline {
				t.Fatalf("offline %v: recorded %+v", offline, r)
			}
		}
	}
}
