package audit

import (
	"bytes"
	"crypto"
	"crypto/ecdsa"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"time"
)

// checkpointDomain separates checkpoint signatures from every other use of
// the checkpoint key's signatures.
const checkpointDomain = "thiqa-audit-checkpoint-v1"

// checkpointVersion is the "v" of the checkpoint lines this package writes.
const checkpointVersion = 1

// MaxCheckpointLine bounds one line of a checkpoint file (a line is about
// 250 bytes).
const MaxCheckpointLine = 1024

// maxSignatureBytes bounds a checkpoint signature (an ECDSA P-521 DER
// signature is at most 139 bytes).
const maxSignatureBytes = 256

// ErrMalformedCheckpoint is returned (wrapped) by ParseCheckpointLine for a
// line that is not a well-formed checkpoint.
var ErrMalformedCheckpoint = errors.New("audit: malformed checkpoint")

// ErrCheckpointSignature is returned (wrapped) by Checkpoint.Verify when the
// signature does not verify.
var ErrCheckpointSignature = errors.New("audit: checkpoint signature does not verify")

// Checkpoint vouches, with a signature by a key outside the database, that
// the chain's head was at Seq with hash Hash at Time. Deleting records after
// Seq, or rewriting any record up to it, is then detected even when the
// head row is rewritten too.
type Checkpoint struct {
	// Seq is the head's seq (at least 1).
	Seq int64
	// Hash is the hash of record Seq.
	Hash []byte
	// Time is when the checkpoint was taken, UTC with nanoseconds.
	Time time.Time
	// Signature is the ASN.1 DER ECDSA signature over SHA-256 of
	// SignedBytes.
	Signature []byte
}

// SignedBytes returns what the checkpoint key signs: the domain
// "thiqa-audit-checkpoint-v1", seq (8 bytes big-endian), the 32-byte hash
// and the time as Unix nanoseconds (8 bytes big-endian). Every field has a
// fixed length, so no two checkpoints share an encoding.
func (c Checkpoint) SignedBytes() []byte {
	b := make([]byte, 0, len(checkpointDomain)+8+HashSize+8)
	b = append(b, checkpointDomain...)
	b = binary.BigEndian.AppendUint64(b, uint64(c.Seq))
	b = append(b, c.Hash...)
	b = binary.BigEndian.AppendUint64(b, uint64(c.Time.UnixNano()))
	return b
}

// SignCheckpoint returns the checkpoint of head at t, signed by signer (an
// ECDSA key; the checkpoint key on the token).
func SignCheckpoint(signer crypto.Signer, head Head, t time.Time) (Checkpoint, error) {
	if _, ok := signer.Public().(*ecdsa.PublicKey); !ok {
		return Checkpoint{}, fmt.Errorf("audit: checkpoint key must be ECDSA, not %T", signer.Public())
	}
	c := Checkpoint{Seq: head.Seq, Hash: append([]byte(nil), head.Hash...), Time: time.Unix(0, t.UnixNano()).UTC()}
	if err := c.check(); err != nil {
		return Checkpoint{}, err
	}
	digest := sha256.Sum256(c.SignedBytes())
	sig, err := signer.Sign(rand.Reader, digest[:], crypto.SHA256)
	if err != nil {
		return Checkpoint{}, fmt.Errorf("audit: signing checkpoint: %w", err)
	}
	c.Signature = sig
	return c, nil
}

// Verify checks the checkpoint's signature with pub (an ECDSA public key).
func (c Checkpoint) Verify(pub crypto.PublicKey) error {
	k, ok := pub.(*ecdsa.PublicKey)
	if !ok {
		return fmt.Errorf("audit: checkpoint public key must be ECDSA, not %T", pub)
	}
	if err := c.check(); err != nil {
		return err
	}
	digest := sha256.Sum256(c.SignedBytes())
	if !ecdsa.VerifyASN1(k, digest[:], c.Signature) {
		return ErrCheckpointSignature
	}
	return nil
}

// check validates the fields the signature covers.
func (c Checkpoint) check() error {
	switch {
	case c.Seq < 1:
		return fmt.Errorf("%w: seq %d is not positive", ErrMalformedCheckpoint, c.Seq)
	case len(c.Hash) != HashSize:
		return fmt.Errorf("%w: hash is %d bytes, want %d", ErrMalformedCheckpoint, len(c.Hash), HashSize)
	case c.Time.UnixNano() <= 0 || !time.Unix(0, c.Time.UnixNano()).Equal(c.Time):
		return fmt.Errorf("%w: time %s is out of range", ErrMalformedCheckpoint, c.Time.Format(time.RFC3339Nano))
	}
	return nil
}

// checkpointLine is the JSON form of one line of a checkpoint file.
type checkpointLine struct {
	V    int    `json:"v"`
	Seq  int64  `json:"seq"`
	Hash string `json:"hash"` // hex
	Time string `json:"time"` // RFC 3339, UTC, nanoseconds
	Sig  string `json:"sig"`  // base64 (standard, padded) of the DER signature
}

// MarshalLine returns the checkpoint as one JSON line ending in "\n".
func (c Checkpoint) MarshalLine() ([]byte, error) {
	if err := c.check(); err != nil {
		return nil, err
	}
	b, err := json.Marshal(checkpointLine{
		V:    checkpointVersion,
		Seq:  c.Seq,
		Hash: hex.EncodeToString(c.Hash),
		Time: c.Time.UTC().Format(time.RFC3339Nano),
		Sig:  base64.StdEncoding.EncodeToString(c.Signature),
	})
	if err != nil {
		return nil, fmt.Errorf("audit: encoding checkpoint: %w", err)
	}
	return append(b, '\n'), nil
}

// ParseCheckpointLine decodes one line of a checkpoint file (with or
// without its "\n"). It is strict: the line must be exactly what
// MarshalLine writes for the checkpoint it holds; unknown or missing fields, another
// version, a hash that is not 32 bytes of hex, a time that is not RFC 3339
// or out of range, and trailing data are errors (ErrMalformedCheckpoint).
// It does not verify the signature.
func ParseCheckpointLine(line []byte) (Checkpoint, error) {
	line = bytes.TrimSuffix(line, []byte("\n"))
	if len(line) > MaxCheckpointLine {
		return Checkpoint{}, fmt.Errorf("%w: line is longer than %d bytes", ErrMalformedCheckpoint, MaxCheckpointLine)
	}
	dec := json.NewDecoder(bytes.NewReader(line))
	dec.DisallowUnknownFields()
	var l checkpointLine
	if err := dec.Decode(&l); err != nil {
		return Checkpoint{}, fmt.Errorf("%w: %w", ErrMalformedCheckpoint, err)
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return Checkpoint{}, fmt.Errorf("%w: trailing data after the JSON object", ErrMalformedCheckpoint)
	}
	if l.V != checkpointVersion {
		return Checkpoint{}, fmt.Errorf("%w: version %d, want %d", ErrMalformedCheckpoint, l.V, checkpointVersion)
	}
	hash, err := hex.DecodeString(l.Hash)
	if err != nil || len(hash) != HashSize {
		return Checkpoint{}, fmt.Errorf("%w: hash is not %d bytes of hex", ErrMalformedCheckpoint, HashSize)
	}
	t, err := time.Parse(time.RFC3339Nano, l.Time)
	if err != nil {
		return Checkpoint{}, fmt.Errorf("%w: time: %w", ErrMalformedCheckpoint, err)
	}
	if len(l.Sig) > base64.StdEncoding.EncodedLen(maxSignatureBytes) {
		return Checkpoint{}, fmt.Errorf("%w: signature is too long", ErrMalformedCheckpoint)
	}
	sig, err := base64.StdEncoding.Strict().DecodeString(l.Sig)
	if err != nil || len(sig) == 0 {
		return Checkpoint{}, fmt.Errorf("%w: signature is not base64", ErrMalformedCheckpoint)
	}
	c := Checkpoint{Seq: l.Seq, Hash: hash, Time: t.UTC(), Signature: sig}
	if err := c.check(); err != nil {
		return Checkpoint{}, err
	}
	// Only the canonical form MarshalLine writes is a checkpoint line, so
	// that no two parsers can read one line two ways (duplicate or
	// differently cased keys, upper-case hex, time offsets, escapes).
	canon, err := c.MarshalLine()
	if err != nil {
		return Checkpoint{}, err
	}
	if !bytes.Equal(bytes.TrimSuffix(canon, []byte("\n")), line) {
		return Checkpoint{}, fmt.Errorf("%w: not in the canonical form this file is written in", ErrMalformedCheckpoint)
	}
	return c, nil
}
