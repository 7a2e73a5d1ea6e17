package crl

import "testing"

// TestForIssuer: the root's CRL is one partition without deltas; an
// issuing CA keeps every partition its certificates name.
func TestForIssuer(t *testing.T) {
	s := Settings{Partitions: 4, Deltas: true}
	if r := s.ForIssuer(true, 9); r.Partitions != 1 || r.Deltas {
		t.Fatalf("root: %+v", r)
	}
	if r := s.ForIssuer(false, 2); r.Partitions != 4 || !r.Deltas {
		t.Fatalf("issuing CA, fewer used: %+v", r)
	}
	if r := s.ForIssuer(false, 7); r.Partitions != 7 {
		t.Fatalf("issuing CA, more used: %+v", r)
	}
}
