package audit

import (
	"bufio"
	"bytes"
	"compress/flate"
	"compress/gzip"
	"crypto"
	"crypto/sha256"
	"crypto/x509"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"hash"
	"io"
	"time"
)

// archiveFormat names the format in an archive file's header.
const archiveFormat = "thiqa-audit-archive"

// archiveVersion is the header's "v".
const archiveVersion = 1

// maxArchiveLine bounds one line of an archive file: a record holds at
// most 64 KiB of details and 1 KiB per field, JSON-escaped (up to six
// bytes a byte).
const maxArchiveLine = 1 << 20

// ErrArchiveCorrupt is returned (wrapped) by ReadArchive for a file that is
// not a complete, intact archive: not gzip, a bad header or trailer, a
// record that does not match its hash or does not link to the one before,
// a checkpoint signature that does not verify, a truncated file.
var ErrArchiveCorrupt = errors.New("audit: archive file is corrupt")

// ArchiveHeader is the first line of an archive file: what it holds and
// what vouches for it.
type ArchiveHeader struct {
	// FirstSeq and LastSeq are the seqs of its first and last records.
	FirstSeq, LastSeq int64
	// PrevHash is the hash the first record chains from (32 zero bytes
	// when FirstSeq is 1).
	PrevHash []byte
	// CheckpointLine is the checkpoint at LastSeq, exactly as it stands in
	// the checkpoint file (without its "\n").
	CheckpointLine string
	// Checkpoint is CheckpointLine parsed.
	Checkpoint Checkpoint
	// CheckpointKeyPEM is the checkpoint public key (PEM, PUBLIC KEY) the
	// archive was made with. Offline verification should pin the key
	// instead (--checkpoint-key): this copy only says which key it was.
	CheckpointKeyPEM string
	// Created is when the archive was written.
	Created time.Time
}

// ArchiveSummary is what ReadArchive found in a file.
type ArchiveSummary struct {
	Header ArchiveHeader
	// Records counts the records.
	Records int64
	// LastHash is the hash of the last record.
	LastHash []byte
	// SHA256 is the SHA-256 of the whole file as stored (compressed).
	SHA256 []byte
	// Bytes is the file's size as stored.
	Bytes int64
}

// archiveHeaderLine is the JSON form of the header.
type archiveHeaderLine struct {
	Format        string `json:"format"`
	V             int    `json:"v"`
	FirstSeq      int64  `json:"firstSeq"`
	LastSeq       int64  `json:"lastSeq"`
	PrevHash      string `json:"prevHash"`
	Checkpoint    string `json:"checkpoint"`
	CheckpointKey string `json:"checkpointKey"`
	Created       string `json:"created"`
}

// archiveRecordLine is the JSON form of one record: every field its hash
// covers, details as the exact stored text.
type archiveRecordLine struct {
	Seq      int64  `json:"seq"`
	Time     string `json:"time"`
	Actor    string `json:"actor"`
	Action   string `json:"action"`
	Object   string `json:"object"`
	Outcome  string `json:"outcome"`
	Details  string `json:"details"`
	PrevHash string `json:"prevHash"`
	Hash     string `json:"hash"`
}

// archiveTrailerLine is the last line: the record count and the SHA-256
// of every (uncompressed) byte before it.
type archiveTrailerLine struct {
	Trailer bool   `json:"trailer"`
	Records int64  `json:"records"`
	SHA256  string `json:"sha256"`
}

// archiveWriter writes an archive file: gzip'd JSON lines, a header, the
// records, a trailer.
type archiveWriter struct {
	gz      *gzip.Writer
	sum     hash.Hash
	records int64
}

func newArchiveWriter(w io.Writer, h ArchiveHeader) (*archiveWriter, error) {
	aw := &archiveWriter{gz: gzip.NewWriter(w), sum: sha256.New()}
	err := aw.line(archiveHeaderLine{
		Format: archiveFormat, V: archiveVersion, FirstSeq: h.FirstSeq, LastSeq: h.LastSeq,
		PrevHash: hex.EncodeToString(h.PrevHash), Checkpoint: h.CheckpointLine,
		CheckpointKey: h.CheckpointKeyPEM, Created: h.Created.UTC().Format(time.RFC3339Nano),
	})
	return aw, err
}

func (aw *archiveWriter) line(v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return fmt.Errorf("audit: encoding an archive line: %w", err)
	}
	b = append(b, '\n')
	aw.sum.Write(b)
	if _, err := aw.gz.Write(b); err != nil {
		return fmt.Errorf("audit: writing the archive: %w", err)
	}
	return nil
}

func (aw *archiveWriter) record(r Record) error {
	aw.records++
	return aw.line(recordLine(r))
}

// finish writes the trailer and flushes the compressor.
func (aw *archiveWriter) finish() error {
	b, err := json.Marshal(archiveTrailerLine{Trailer: true, Records: aw.records, SHA256: hex.EncodeToString(aw.sum.Sum(nil))})
	if err != nil {
		return fmt.Errorf("audit: encoding the archive trailer: %w", err)
	}
	if _, err := aw.gz.Write(append(b, '\n')); err != nil {
		return fmt.Errorf("audit: writing the archive: %w", err)
	}
	if err := aw.gz.Close(); err != nil {
		return fmt.Errorf("audit: writing the archive: %w", err)
	}
	return nil
}

// countingReader counts and hashes what is read through it.
type countingReader struct {
	r   io.Reader
	n   int64
	sum hash.Hash
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += int64(n)
	c.sum.Write(p[:n])
	return n, err
}

// corrupt wraps ErrArchiveCorrupt.
func corrupt(format string, args ...any) error {
	return fmt.Errorf("%w: %s", ErrArchiveCorrupt, fmt.Sprintf(format, args...))
}

// strictJSON decodes one JSON object line into v, refusing unknown fields
// and trailing data.
func strictJSON(line []byte, v any) error {
	dec := json.NewDecoder(bytes.NewReader(line))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return err
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return errors.New("trailing data after the JSON object")
	}
	return nil
}

// hexHash decodes a 32-byte hash in hex.
func hexHash(s string) ([]byte, bool) {
	b, err := hex.DecodeString(s)
	return b, err == nil && len(b) == HashSize
}

// ReadArchive reads and verifies a whole archive file from r: the header,
// the checkpoint in it (its signature with pub, or with the key in the
// header when pub is nil; a key in the header other than pub is an
// error), every record (its hash recomputed, linked to the one before,
// the first to the header's PrevHash, seqs FirstSeq to LastSeq without
// gaps), the last record's hash against the checkpoint's, and the trailer
// (count and SHA-256), with nothing after it. fn, when not nil, is called
// with each record once it verified. Any flaw is an error wrapping
// ErrArchiveCorrupt; an error reading r is returned as it is (wrapped).
func ReadArchive(r io.Reader, pub crypto.PublicKey, fn func(Record) error) (ArchiveSummary, error) {
	cr := &countingReader{r: r, sum: sha256.New()}
	// A bufio.Reader of ours (a ByteReader): gzip reads no further than
	// its member, so what follows it can be checked.
	raw := bufio.NewReader(cr)
	gz, err := gzip.NewReader(raw)
	if err != nil {
		if errors.Is(err, io.EOF) || isDataError(err) {
			return ArchiveSummary{}, corrupt("not a gzip file: %v", err)
		}
		return ArchiveSummary{}, fmt.Errorf("audit: reading the archive: %w", err)
	}
	gz.Multistream(false)
	br := bufio.NewReaderSize(gz, 64<<10)
	sum := sha256.New()
	lineNo := 0
	readLine := func() ([]byte, error) {
		var line []byte
		for {
			chunk, err := br.ReadSlice('\n')
			line = append(line, chunk...)
			if len(line) > maxArchiveLine {
				return nil, corrupt("line %d is longer than %d bytes", lineNo+1, maxArchiveLine)
			}
			switch {
			case err == nil:
				lineNo++
				return line, nil
			case errors.Is(err, bufio.ErrBufferFull):
				continue
			case errors.Is(err, io.EOF):
				return nil, corrupt("the file ends after line %d without its trailer (truncated)", lineNo)
			case isDataError(err):
				return nil, corrupt("the compressed data is damaged or truncated after line %d: %v", lineNo, err)
			default:
				return nil, fmt.Errorf("audit: reading the archive: %w", err)
			}
		}
	}
	var s ArchiveSummary
	line, err := readLine()
	if err != nil {
		return s, err
	}
	sum.Write(line)
	h, err := parseArchiveHeader(line, pub)
	if err != nil {
		return s, err
	}
	s.Header = h
	prev := h.PrevHash
	expect := h.FirstSeq
	buf := make([]byte, 0, 512)
	for {
		line, err := readLine()
		if err != nil {
			return s, err
		}
		if bytes.HasPrefix(line, []byte(`{"trailer":`)) {
			var t archiveTrailerLine
			if err := strictJSON(line, &t); err != nil || !t.Trailer {
				return s, corrupt("line %d: not a trailer: %v", lineNo, err)
			}
			if t.Records != s.Records {
				return s, corrupt("the trailer counts %d records, the file holds %d", t.Records, s.Records)
			}
			if t.SHA256 != hex.EncodeToString(sum.Sum(nil)) {
				return s, corrupt("the trailer's SHA-256 does not match the lines before it")
			}
			break
		}
		sum.Write(line)
		var l archiveRecordLine
		if err := strictJSON(line, &l); err != nil {
			return s, corrupt("line %d: not a record: %v", lineNo, err)
		}
		rec, err := l.record()
		if err != nil {
			return s, corrupt("line %d: %v", lineNo, err)
		}
		switch {
		case rec.Seq != expect:
			return s, corrupt("line %d holds record %d where record %d belongs", lineNo, rec.Seq, expect)
		case rec.Seq > h.LastSeq:
			return s, corrupt("record %d lies beyond the header's last seq %d", rec.Seq, h.LastSeq)
		case !bytes.Equal(rec.PrevHash, prev):
			return s, corrupt("record %d does not link to record %d", rec.Seq, rec.Seq-1)
		}
		buf = appendCanonical(buf[:0], rec)
		if !bytes.Equal(sum256(buf), rec.Hash) {
			return s, corrupt("record %d does not match its hash (edited)", rec.Seq)
		}
		if fn != nil {
			if err := fn(rec); err != nil {
				return s, err
			}
		}
		prev = rec.Hash
		expect++
		s.Records++
	}
	if expect != h.LastSeq+1 {
		return s, corrupt("the file ends at record %d, its header names %d", expect-1, h.LastSeq)
	}
	if !bytes.Equal(prev, h.Checkpoint.Hash) {
		return s, corrupt("record %d does not have the hash its checkpoint names", h.LastSeq)
	}
	// Nothing may follow the trailer, in this gzip member or after it.
	if n, err := io.Copy(io.Discard, br); err != nil || n > 0 {
		if err != nil && !isDataError(err) {
			return s, fmt.Errorf("audit: reading the archive: %w", err)
		}
		return s, corrupt("data after the trailer, or damaged compressed data (%d bytes, %v)", n, err)
	}
	if err := gz.Close(); err != nil {
		return s, corrupt("closing the compressed data: %v", err)
	}
	if n, err := io.Copy(io.Discard, raw); err != nil {
		return s, fmt.Errorf("audit: reading the archive: %w", err)
	} else if n > 0 {
		return s, corrupt("%d bytes after the compressed data", n)
	}
	s.LastHash, s.SHA256, s.Bytes = prev, cr.sum.Sum(nil), cr.n
	return s, nil
}

// isDataError reports whether err comes from damaged or truncated
// compressed data (rather than from reading the file).
func isDataError(err error) bool {
	var ce flate.CorruptInputError
	return errors.As(err, &ce) || errors.Is(err, gzip.ErrChecksum) || errors.Is(err, gzip.ErrHeader) ||
		errors.Is(err, io.ErrUnexpectedEOF)
}

// parseArchiveHeader decodes and checks the header line, and the
// checkpoint's signature with pub (or the header's key when pub is nil).
func parseArchiveHeader(line []byte, pub crypto.PublicKey) (ArchiveHeader, error) {
	var l archiveHeaderLine
	if err := strictJSON(line, &l); err != nil {
		return ArchiveHeader{}, corrupt("line 1: not an archive header: %v", err)
	}
	if l.Format != archiveFormat || l.V != archiveVersion {
		return ArchiveHeader{}, corrupt("line 1: format %q version %d, want %q version %d", l.Format, l.V, archiveFormat, archiveVersion)
	}
	h := ArchiveHeader{FirstSeq: l.FirstSeq, LastSeq: l.LastSeq, CheckpointLine: l.Checkpoint, CheckpointKeyPEM: l.CheckpointKey}
	var ok bool
	if h.PrevHash, ok = hexHash(l.PrevHash); !ok {
		return h, corrupt("header: prevHash is not %d bytes of hex", HashSize)
	}
	if h.FirstSeq < 1 || h.LastSeq < h.FirstSeq {
		return h, corrupt("header: seqs %d to %d are not a range", h.FirstSeq, h.LastSeq)
	}
	if h.FirstSeq == 1 && !bytes.Equal(h.PrevHash, GenesisHash()) {
		return h, corrupt("header: record 1 must chain from 32 zero bytes")
	}
	t, err := time.Parse(time.RFC3339Nano, l.Created)
	if err != nil {
		return h, corrupt("header: created: %v", err)
	}
	h.Created = t.UTC()
	if h.Checkpoint, err = ParseCheckpointLine([]byte(l.Checkpoint)); err != nil {
		return h, corrupt("header: checkpoint: %v", err)
	}
	if h.Checkpoint.Seq != h.LastSeq {
		return h, corrupt("header: the checkpoint is at seq %d, the archive ends at %d", h.Checkpoint.Seq, h.LastSeq)
	}
	own, err := parsePublicKeyPEM([]byte(l.CheckpointKey))
	if err != nil {
		return h, corrupt("header: checkpoint key: %v", err)
	}
	if pub != nil {
		if !sameKey(own, pub) {
			return h, corrupt("header: the archive was made with another checkpoint key than the one given")
		}
		own = pub
	}
	if err := h.Checkpoint.Verify(own); err != nil {
		return h, corrupt("header: the checkpoint's signature does not verify: %v", err)
	}
	return h, nil
}

// record converts a record line, checking its encodings.
func (l archiveRecordLine) record() (Record, error) {
	t, err := time.Parse(time.RFC3339Nano, l.Time)
	if err != nil {
		return Record{}, fmt.Errorf("time: %w", err)
	}
	r := Record{Seq: l.Seq, Time: t.UTC(), Actor: l.Actor, Action: l.Action, Object: l.Object,
		Outcome: l.Outcome, Details: json.RawMessage(l.Details)}
	var ok bool
	if r.PrevHash, ok = hexHash(l.PrevHash); !ok {
		return Record{}, fmt.Errorf("prevHash is not %d bytes of hex", HashSize)
	}
	if r.Hash, ok = hexHash(l.Hash); !ok {
		return Record{}, fmt.Errorf("hash is not %d bytes of hex", HashSize)
	}
	return r, nil
}

// parsePublicKeyPEM decodes a PEM PUBLIC KEY.
func parsePublicKeyPEM(b []byte) (crypto.PublicKey, error) {
	blk, rest := pem.Decode(b)
	if blk == nil || blk.Type != "PUBLIC KEY" || len(bytes.TrimSpace(rest)) > 0 {
		return nil, errors.New("not one PEM PUBLIC KEY block")
	}
	k, err := x509.ParsePKIXPublicKey(blk.Bytes)
	if err != nil {
		return nil, fmt.Errorf("parsing the public key: %w", err)
	}
	return k, nil
}

// sameKey reports whether a and b are the same public key.
func sameKey(a, b crypto.PublicKey) bool {
	ea, ok := a.(interface{ Equal(crypto.PublicKey) bool })
	return ok && ea.Equal(b)
}
