package verify

import (
	"bytes"
	"crypto/x509"
	"math/big"
	"testing"
	"time"

	"github.com/thiqa/thiqa/verify/path"
)

// deltaFlood is the revocation information of a document that replays
// bases genuine complete CRLs of the test root and adds deltas forged
// delta CRLs in the root's name, each numbered to go with every base.
func deltaFlood(t testing.TB, p *testPKI, bases, deltas int) []*x509.RevocationList {
	t.Helper()
	now := time.Now().Truncate(time.Second)
	impostor, impostorKey := p.impostorRoot(t)
	var out []*x509.RevocationList
	parse := func(der []byte) {
		l, err := x509.ParseRevocationList(der)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, l)
	}
	for k := range bases {
		parse(holdCRL(t, p.root, p.rootKey, int64(100+k), nil, now.Add(-time.Duration(bases-k)*time.Minute)))
	}
	for k := range deltas {
		parse(holdCRL(t, impostor, impostorKey, int64(1000+k), big.NewInt(1), now.Add(-time.Minute)))
	}
	return out
}

// TestForgedDeltasCheckedOnce: forged delta CRLs offered with many genuine
// complete CRLs are checked once each, not once per complete CRL (B
// complete CRLs and D deltas cost B×D signature checks for each
// certificate, path and validation time). The check with 20 complete CRLs
// must take about as long as with one, not 20 times as long.
func TestForgedDeltasCheckedOnce(t *testing.T) {
	p := newTestPKI(t)
	const deltas = 300
	timeCheck := func(bases int) time.Duration {
		crls := deltaFlood(t, p, bases, deltas)
		v := path.New(path.Options{Roots: []*x509.Certificate{p.root}, At: time.Now()})
		best := time.Duration(1 << 62)
		for range 3 {
			rd := &revocationData{crls: crls}
			start := time.Now()
			if err := rd.CheckRevocation([]*x509.Certificate{p.root, p.leaf}, 1, time.Now(), v); err != nil {
				t.Fatalf("%d complete CRLs: want good: %v", bases, err)
			}
			best = min(best, time.Since(start))
		}
		return best
	}
	one, many := timeCheck(1), timeCheck(20)
	if many > 8*one {
		t.Fatalf("20 complete CRLs with %d forged deltas took %v, one took %v: the deltas are checked again for each complete CRL", deltas, many, one)
	}
}

// TestManyCRLsAddedInLinearTime: adding a document's CRLs does not compare
// each with all those added before (a 64 MiB upload holds some 250,000
// small CRLs: about 3·10^10 comparisons). 40,000 CRLs took a minute so,
// 0.1 s now: the bound leaves room for a loaded machine.
func TestManyCRLsAddedInLinearTime(t *testing.T) {
	p := newTestPKI(t)
	base := holdCRL(t, p.root, p.rootKey, 1, nil, time.Now().Add(-time.Minute))
	// Variants differing in their last bytes (the signature's: they still
	// parse), each parsed once up front.
	memo := crlMemo{}
	var ders [][]byte
	for k := range 40000 {
		der := bytes.Clone(base)
		der[len(der)-1] ^= byte(k)
		der[len(der)-2] ^= byte(k >> 8)
		l, err := x509.ParseRevocationList(der)
		if err != nil {
			t.Fatal(err)
		}
		memo[string(der)] = l
		ders = append(ders, der)
	}
	rd := &revocationData{crlMemo: memo}
	start := time.Now()
	for _, der := range ders {
		rd.addCRL(der)
	}
	if took := time.Since(start); took > 3*time.Second {
		t.Fatalf("adding %d CRLs took %v: each is compared with all before", len(ders), took)
	}
	if len(rd.crls) != len(ders) {
		t.Fatalf("%d CRLs added, want %d", len(rd.crls), len(ders))
	}
}
