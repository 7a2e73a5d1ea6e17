// Package audit is Thiqa's append-only, hash-chained audit log. Every record
// (time, actor, action, object, outcome, details) carries the SHA-256 of its
// predecessor, and the store keeps the seq and hash of the last record (the
// head), so editing, deleting, inserting or truncating records is detected by
// Verify.
//
// Appends are group-committed: a Log gathers concurrent Append calls into
// one transaction, so recording does not cap a service's throughput, and an
// Append returns only once its record is committed. The chain is safe under
// concurrency and across processes sharing one database, because the store
// appends under a lock on the head.
//
// Many small events of one kind (time-stamp tokens) can share a record: the
// items given to a Group's Append in one batch are sealed into one
// collective record (see Group), each caller again released only once it
// is committed.
//
// # Checkpoints
//
// The chain alone cannot catch someone who controls the database: delete
// the last records and move the head back, or rewrite every record from
// some seq on with fresh hashes, and the chain is consistent again. A
// signed checkpoint anchors the head outside the database: (seq, hash of
// record seq, time), signed with a dedicated ECDSA key on the HSM over a
// domain-separated encoding (Checkpoint.SignedBytes). `thiqa serve` appends
// one every audit.checkpointEvery and at shutdown, as a JSON line, to a file
// outside the database (CheckpointWriter: O_APPEND, fsync after each line,
// flock against other writers, nothing written while the head stands
// still), and the public key lies next to it as PEM. VerifyCheckpoints then
// demands that every line verifies, that seqs and times never go backwards,
// that the chain holds each checkpoint's record with exactly its hash, and
// that the head is at or past the last checkpoint. A crash in the middle of
// a write leaves an incomplete last line: the verifier ignores it with a
// warning, the writer cuts it off before its next line; a bad line anywhere
// else is a break.
//
// What a checkpoint vouches for is bounded by where the file and the public
// key live: an attacker who can also rewrite the file and the PEM is not
// caught, so production ships the file off the host (log shipping, WORM
// storage) and pins the public key elsewhere. Records written after the
// last checkpoint (at most one interval, or those of a crash) are vouched
// for by the chain alone.
//
// VerifyAll walks the whole chain from seq 1 (from the first live record
// once the oldest are archived, see below), which grows with the log
// (about an hour per billion records). VerifySince starts at a signed
// checkpoint instead (the anchor: its signature verified, its record's
// stored hash compared) and walks from there: it does not see a rewrite
// of the records before the anchor that leaves the anchor record's stored
// hash as it was, so it complements the full walk and never replaces it.
//
// # Archiving
//
// The oldest records can move off the live database into an archive file
// (Archive, `thiqa audit archive`): a verified copy of records FirstSeq to
// LastSeq whose end is vouched for by a signed checkpoint at LastSeq. The
// store keeps one row per archived range (ArchiveRow): the range, the hash
// of its last record, the file's name and SHA-256, and the signed
// checkpoint the file ends at. The full verification then starts at the
// first live record, which must chain from the last archived record's
// hash in that row; the row's checkpoint must verify with the checkpoint
// key and name that hash, as must a checkpoint at its seq in the
// checkpoint file; deleting the oldest records without such a row, a row
// written without the key, or an edited row, is a break.
//
// The package declares the storage it needs (Store, and the smaller
// HeadReader and ChainReader); store.DB implements them, and FileStore keeps
// a chain in a file of JSON lines for logs outside any database (the key
// ceremony's). It never sees the HSM: the checkpoint key comes in as a
// crypto.Signer.
package audit

import (
	"context"
	"crypto/sha256"
	"encoding/binary"
	"encoding/json"
	"time"
)

// HashSize is the length of a record hash (SHA-256).
const HashSize = sha256.Size

// hashDomain separates audit record hashes from any other SHA-256 use.
const hashDomain = "thiqa-audit-v1"

// Outcomes of an audited action.
const (
	OutcomeSuccess = "success"
	OutcomeFailure = "failure"
	OutcomeRefused = "refused"
)

// Record is one entry of the chain as stored.
type Record struct {
	// Seq numbers the records 1, 2, 3 … without gaps.
	Seq int64
	// Time is when the record was sealed, in UTC with nanoseconds.
	Time time.Time
	// Actor is who acted (a subject, "system", an operator name).
	Actor string
	// Action is what was done, e.g. "key.generate", "certificate.issue".
	Action string
	// Object is what it was done to (a key URI, a serial), may be empty.
	Object string
	// Outcome is OutcomeSuccess, OutcomeFailure or OutcomeRefused.
	Outcome string
	// Details is JSON, exactly the bytes stored and hashed.
	Details json.RawMessage
	// PrevHash is the Hash of record Seq-1 (32 zero bytes for record 1).
	PrevHash []byte
	// Hash is HashRecord of this record.
	Hash []byte
}

// Entry is what a caller asks to record. Details is marshalled once with
// encoding/json (map keys sorted) and stored as those bytes; nil records {}.
type Entry struct {
	Actor, Action, Object, Outcome string
	Details                        any
}

// Head is the end of the chain: the seq and hash of the last record
// (seq 0 and 32 zero bytes for an empty log).
type Head struct {
	Seq  int64
	Hash []byte
}

// GenesisHash returns the PrevHash of record 1: 32 zero bytes.
func GenesisHash() []byte { return make([]byte, HashSize) }

// Store is the storage the audit log needs; store.DB implements it.
type Store interface {
	// AppendAuditRecords runs one transaction: it locks the chain head
	// (against other transactions and processes), calls seal with the
	// current head, inserts the records seal returns (which must continue
	// the chain: seqs head.Seq+1, +2 …, linked by PrevHash), moves the head
	// to the last of them and commits. If seal or the transaction fails,
	// nothing is written. seal may be called again if the store retries the
	// transaction, so it must depend only on the head it is given.
	AppendAuditRecords(ctx context.Context, seal func(head Head) ([]Record, error)) error
	// AuditRecords calls fn for every record with Seq >= fromSeq, in seq
	// order, streaming (memory does not grow with the log). An error from fn
	// stops the walk and is returned.
	AuditRecords(ctx context.Context, fromSeq int64, fn func(Record) error) error
	// AuditHead returns the current head.
	AuditHead(ctx context.Context) (Head, error)
}

// HashRecord returns the SHA-256 of the canonical encoding of r: the domain
// prefix "thiqa-audit-v1", then seq (8 bytes big-endian), the time in UTC as
// RFC 3339 with nanoseconds, actor, action, object, outcome, the details
// bytes and the previous hash, each of those preceded by its length as 8
// bytes big-endian. Every field is delimited, so no two different records
// share an encoding.
func HashRecord(r Record) []byte {
	sum := sha256.Sum256(appendCanonical(nil, r))
	return sum[:]
}

func appendCanonical(b []byte, r Record) []byte {
	field := func(b []byte, s []byte) []byte {
		b = binary.BigEndian.AppendUint64(b, uint64(len(s)))
		return append(b, s...)
	}
	b = field(b, []byte(hashDomain))
	b = binary.BigEndian.AppendUint64(b, uint64(r.Seq))
	b = field(b, []byte(r.Time.UTC().Format(time.RFC3339Nano)))
	b = field(b, []byte(r.Actor))
	b = field(b, []byte(r.Action))
	b = field(b, []byte(r.Object))
	b = field(b, []byte(r.Outcome))
	b = field(b, r.Details)
	b = field(b, r.PrevHash)
	return b
}
