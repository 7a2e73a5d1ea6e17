package revocation_test

import (
	"context"
	"crypto"
	"crypto/x509"
	"log/slog"
	"math/big"
	"os"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	xocsp "golang.org/x/crypto/ocsp"

	"github.com/thiqa/thiqa/ca/crl"
	"github.com/thiqa/thiqa/ca/hierarchy"
	"github.com/thiqa/thiqa/ca/ocsp"
	"github.com/thiqa/thiqa/ca/revocation"
	"github.com/thiqa/thiqa/store"
	"github.com/thiqa/thiqa/store/storetest"
)

// node is one `thiqa serve` node's revocation publication: its own store
// connection and responders over the shared token and data folder.
type node struct {
	db  *store.DB
	rp  *revocation.Responders
	pub *revocation.Publication
}

// startNode builds a node's publication as wireRevocation does, the
// responders coordinating their renewals through the store;
// renewBefore is the responders' renewal margin.
func (f *fixture) startNode(t *testing.T, renewBefore time.Duration) *node {
	t.Helper()
	n := &node{db: storetest.Open(t, f.cfg)}
	n.rp = revocation.NewResponders(revocation.ResponderOptions{Dir: f.dir, Keys: f.keys, CA: f.pki.Authority,
		Subjects: map[string]revocation.ResponderSubject{"citizen": {Organization: "Thiqa Test"}}, Actor: "thiqa-serve",
		Renewals: n.db.OCSPResponderRenewals()})
	cset, err := crl.Config{Validity: 24 * time.Hour, RegenerateEvery: time.Hour, TriggerDelay: 200 * time.Millisecond, Partitions: 1, BaseURL: baseURL}.Validate()
	if err != nil {
		t.Fatal(err)
	}
	oset, err := ocsp.Config{Validity: 24 * time.Hour, RefreshEvery: 12 * time.Hour, RenewBefore: renewBefore, PresignHashes: []string{"sha1"}}.Validate()
	if err != nil {
		t.Fatal(err)
	}
	var parts []*hierarchy.Part
	for _, name := range []string{"root", "citizen", "organisation", "tsa"} {
		cert := f.pki.Root
		if name != "root" {
			cert = f.pki.CAs[name]
		}
		parts = append(parts, &hierarchy.Part{Conf: hierarchy.CA{Name: name}, Key: uriKey{f.pki.Keys[name]}, Cert: cert})
	}
	n.pub, err = revocation.NewPublication(t.Context(), revocation.PublicationOptions{Parts: parts, CRL: cset, OCSP: oset, Store: n.db.Revocations(),
		Issued: n.db.Certificates(nil), Responders: n.rp, Dir: f.dir, Logger: slog.New(slog.DiscardHandler), Registerer: prometheus.NewRegistry()})
	if err != nil {
		t.Fatal(err)
	}
	return n
}

// signedBy returns the responder certificate of an OCSP answer of n
// about the citizen certificate serial (with a nonce: signed now).
func (n *node) signedBy(t *testing.T, f *fixture, serial *big.Int) *x509.Certificate {
	t.Helper()
	req, err := ocsp.NewRequest(f.pki.CAs["citizen"], serial, crypto.SHA256, []byte("cluster-nonce-01"))
	if err != nil {
		t.Fatal(err)
	}
	der, _ := n.pub.Responder.Respond(t.Context(), req)
	resp, err := xocsp.ParseResponse(der, f.pki.CAs["citizen"])
	if err != nil || resp.Status != xocsp.Good || resp.Certificate == nil {
		t.Fatalf("OCSP answer: %v %+v", err, resp)
	}
	return resp.Certificate
}

// responderKeys counts the citizen responder keys on the token.
func (f *fixture) responderKeys(t *testing.T) int {
	t.Helper()
	labels, err := f.keys.Labels(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, l := range labels {
		if strings.HasPrefix(l, "ocsp-citizen-") {
			n++
		}
	}
	return n
}

// except renews the responders of the CAs not in done only; it answers
// "under way elsewhere" for the others.
type except struct {
	rp   *revocation.Responders
	done []string
}

func (e except) RenewResponder(ctx context.Context, caName string, current *x509.Certificate) (ocsp.ResponderRenewal, error) {
	if slices.Contains(e.done, caName) {
		return ocsp.ResponderRenewal{}, nil
	}
	return e.rp.RenewResponder(ctx, caName, current)
}

// TestResponderRenewalInCluster runs two publications over one store, one
// token and one data folder, as two `thiqa serve` nodes do, with the
// responders due at once on both: exactly one new responder key and
// certificate is made per CA, both nodes sign with the certificate that
// ocsp-<ca>.pem names, the label file names its key, and a node started
// afterwards loads the same responder.
func TestResponderRenewalInCluster(t *testing.T) {
	for _, d := range storetest.Dialects() {
		t.Run(d.Name, func(t *testing.T) { runResponderRenewalInCluster(t, d) })
	}
}

func runResponderRenewalInCluster(t *testing.T, d storetest.Dialect) {
	f := newFixture(t, d)
	certPath, labelPath := f.rp.Paths("citizen")
	first := readCert(t, certPath)
	f.issue(t, "12345678", "leaf.pem")
	leaf := readCert(t, f.path("leaf.pem"))
	// A renewal margin beyond the responders' life (7 days): due at once.
	const renewBefore = 200 * time.Hour
	nodes := []*node{f.startNode(t, renewBefore), f.startNode(t, renewBefore)}
	generated := f.keys.generated
	if n := f.responderKeys(t); n != 1 {
		t.Fatalf("%d citizen responder keys before the renewal, want 1", n)
	}

	var wg sync.WaitGroup
	replaced := make([][]string, len(nodes))
	for i, n := range nodes {
		wg.Go(func() {
			var err error
			if replaced[i], err = n.pub.Responder.RenewDue(t.Context(), n.rp); err != nil {
				t.Error(err)
			}
		})
	}
	wg.Wait()
	// The next check of each node: where it found the renewal under way,
	// it adopts the new responder now. (Only there: with this margin a
	// renewed responder is due again at once.)
	for i, n := range nodes {
		if _, err := n.pub.Responder.RenewDue(t.Context(), except{n.rp, replaced[i]}); err != nil {
			t.Fatal(err)
		}
	}

	if n := f.responderKeys(t); n != 2 {
		t.Fatalf("%d citizen responder keys on the token, want the original and one renewal", n)
	}
	if got := f.keys.generated - generated; got != 3 {
		t.Fatalf("%d responder keys generated, want one for each of the 3 issuing CAs", got)
	}
	published := readCert(t, certPath)
	if published.Equal(first) {
		t.Fatal("ocsp-citizen.pem still names the original responder")
	}
	label, err := os.ReadFile(labelPath)
	if err != nil {
		t.Fatal(err)
	}
	key, err := f.keys.Key(t.Context(), strings.TrimSpace(string(label)))
	if err != nil || !key.Public().(interface{ Equal(crypto.PublicKey) bool }).Equal(published.PublicKey) {
		t.Fatalf("ocsp-citizen.label (%q) does not name the key of ocsp-citizen.pem: %v", label, err)
	}
	for i, n := range nodes {
		if c := n.signedBy(t, f, leaf.SerialNumber); !c.Equal(published) {
			t.Fatalf("node %d signs with responder %x, ocsp-citizen.pem names %x", i, c.SerialNumber, published.SerialNumber)
		}
	}

	// A restart: a fresh publication loads the same responder.
	late := f.startNode(t, renewBefore)
	if c := late.signedBy(t, f, leaf.SerialNumber); !c.Equal(published) {
		t.Fatalf("a restarted node signs with responder %x, want %x", c.SerialNumber, published.SerialNumber)
	}
	if n := f.responderKeys(t); n != 2 {
		t.Fatalf("%d citizen responder keys after the restart, want 2", n)
	}
}

// TestResponderLabelOutOfStep: whatever order two renewals (or a crash
// between the two files) leave ocsp-<ca>.label and ocsp-<ca>.pem in, the
// certificate decides: its key is found, the label file put right, and
// the node starts, alone or in a cluster.
func TestResponderLabelOutOfStep(t *testing.T) {
	for _, d := range storetest.Dialects() {
		t.Run(d.Name, func(t *testing.T) {
			f := newFixture(t, d)
			certPath, labelPath := f.rp.Paths("citizen")
			oldPEM, oldLabel := readFile(t, certPath), readFile(t, labelPath)
			rn, err := f.rp.RenewResponder(t.Context(), "citizen", nil)
			if err != nil || rn.Responder.Cert == nil {
				t.Fatalf("renewal: %+v %v", rn, err)
			}
			newPEM, newLabel := readFile(t, certPath), readFile(t, labelPath)
			if newLabel == oldLabel || newPEM == oldPEM || strings.Count(newLabel, "\n") != 1 {
				t.Fatalf("the renewal left label %q (was %q)", newLabel, oldLabel)
			}
			cluster := f.startNode(t, 0).rp
			for _, c := range []struct {
				name, pem, label, want string
			}{
				{"one node's label, another's certificate (as before the fix)", newPEM, oldLabel, newLabel},
				{"the label renewed, the certificate not", oldPEM, newLabel, oldLabel},
				{"crash after the first label write", oldPEM, strings.TrimSpace(newLabel) + "\n" + oldLabel, oldLabel},
				{"crash after the certificate write", newPEM, strings.TrimSpace(newLabel) + "\n" + oldLabel, newLabel},
			} {
				for name, rp := range map[string]*revocation.Responders{"alone": f.rp, "cluster": cluster} {
					writeFile(t, certPath, c.pem)
					writeFile(t, labelPath, c.label)
					rc, renewed, err := rp.Ensure(t.Context(), "citizen", 0)
					if err != nil || renewed {
						t.Fatalf("%s, %s: renewed %v, %v", c.name, name, renewed, err)
					}
					if got := readFile(t, labelPath); got != c.want {
						t.Fatalf("%s, %s: label file %q, want %q", c.name, name, got, c.want)
					}
					if !rc.Cert.Equal(readCert(t, certPath)) || !rc.Signer.Public().(interface{ Equal(crypto.PublicKey) bool }).Equal(rc.Cert.PublicKey) {
						t.Fatalf("%s, %s: loaded another responder than ocsp-citizen.pem", c.name, name)
					}
				}
			}
			// The node starts from files out of step.
			writeFile(t, certPath, newPEM)
			writeFile(t, labelPath, oldLabel)
			f.startNode(t, 0)
			if got := readFile(t, labelPath); got != newLabel {
				t.Fatalf("label file %q after start, want %q", got, newLabel)
			}
		})
	}
}

func readFile(t *testing.T, p string) string {
	t.Helper()
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func writeFile(t *testing.T, p, s string) {
	t.Helper()
	if err := os.WriteFile(p, []byte(s), 0o644); err != nil {
		t.Fatal(err)
	}
}
