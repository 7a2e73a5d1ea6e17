package audit

import (
	"bytes"
	"encoding/hex"
	"testing"
	"time"
)

func sample() Record {
	return Record{
		Seq:      42,
		Time:     time.Date(2026, 11, 22, 10, 0, 0, 123456789, time.UTC),
		Actor:    "operator:alice",
		Action:   "key.generate",
		Object:   "pkcs11:token=thiqa;object=citizen-ca",
		Outcome:  OutcomeSuccess,
		Details:  []byte(`{"alg":"P-384"}`),
		PrevHash: bytes.Repeat([]byte{0xab}, HashSize),
	}
}

// TestHashRecordKnownAnswer pins the canonical encoding: a change to it
// would make every existing chain fail to verify.
func TestHashRecordKnownAnswer(t *testing.T) {
	const want = "407a018067bf0406a9ee5d31d372866c95ebf112527c14cb7bf9f90abee58a86" // computed independently (Python hashlib)
	got := hex.EncodeToString(HashRecord(sample()))
	if got != want {
		t.Fatalf("HashRecord(sample) = %s, want %s", got, want)
	}
}

func TestHashRecordCoversEveryField(t *testing.T) {
	base := HashRecord(sample())
	muts := map[string]func(*Record){
		"seq":      func(r *Record) { r.Seq++ },
		"time":     func(r *Record) { r.Time = r.Time.Add(time.Nanosecond) },
		"actor":    func(r *Record) { r.Actor += "x" },
		"action":   func(r *Record) { r.Action = "key.delete" },
		"object":   func(r *Record) { r.Object = "" },
		"outcome":  func(r *Record) { r.Outcome = OutcomeFailure },
		"details":  func(r *Record) { r.Details = []byte(`{"alg":"P-256"}`) },
		"prevHash": func(r *Record) { r.PrevHash = GenesisHash() },
		// Moving a byte from one field to the next must change the hash.
		"boundary": func(r *Record) { r.Actor, r.Action = "operator:alicek", "ey.generate" },
	}
	for name, mut := range muts {
		r := sample()
		mut(&r)
		if bytes.Equal(HashRecord(r), base) {
			t.Errorf("changing %s does not change the hash", name)
		}
	}
	// The time zone of Time does not matter, only the instant.
	r := sample()
	r.Time = r.Time.In(time.FixedZone("GST", 4*3600))
	if !bytes.Equal(HashRecord(r), base) {
		t.Error("the same instant in another zone hashes differently")
	}
	// The Hash field itself is not hashed.
	r = sample()
	r.Hash = []byte("anything")
	if !bytes.Equal(HashRecord(r), base) {
		t.Error("Hash is part of its own input")
	}
}
