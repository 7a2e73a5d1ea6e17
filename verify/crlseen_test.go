package verify

import (
	"runtime"
	"testing"
	"time"
)

// TestAddCRLKeepsNoCopies: each signature's revocation data adds all the
// CRLs of the document's DSS; telling duplicates apart must not keep a
// copy of each CRL per signature (a document with many signatures and
// large CRLs held signatures × CRL bytes).
func TestAddCRLKeepsNoCopies(t *testing.T) {
	p := newTestPKI(t)
	der := bigCRL(t, p, 20000, time.Now().Add(-time.Minute))
	memo := crlMemo{}
	(&revocationData{crlMemo: memo}).addCRL(der) // parsed once, as for a document
	const sigs = 20
	rds := make([]*revocationData, sigs)
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	for k := range rds {
		rds[k] = &revocationData{crlMemo: memo}
		rds[k].addCRL(der)
		rds[k].addCRL(der)
	}
	runtime.ReadMemStats(&after)
	for _, rd := range rds {
		if len(rd.crls) != 1 {
			t.Fatalf("%d CRLs kept, want 1", len(rd.crls))
		}
	}
	grew := after.TotalAlloc - before.TotalAlloc
	t.Logf("allocated %d bytes", grew)
	if grew > uint64(len(der)) {
		t.Fatalf("adding a %d-byte CRL for %d signatures allocated %d bytes", len(der), sigs, grew)
	}
}
