package audit

import (
	"bufio"
	"bytes"
	"context"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"syscall"
	"time"
)

// FileStore keeps a chain in a file of JSON lines, one Record a line, for
// a log that lives outside any database: the key ceremony's log, kept with
// the offline root on a machine that runs no server. It is a Store, so a
// Log appends to it and Verify walks it with the same hashing as the
// database's chain.
//
// The head is the last line: a file has no second place to keep it, so
// cutting lines off the end is not detected by Verify alone. Whoever runs
// the ceremony writes down the seq and hash each command prints and holds
// the file against them later.
type FileStore struct {
	path string
}

// NewFileStore returns the store over the file at path (created on the
// first append, mode 0600).
func NewFileStore(path string) *FileStore { return &FileStore{path: path} }

// Path returns the file's path.
func (f *FileStore) Path() string { return f.path }

// LineError is a line of the file that is not a record: a truncated write,
// or an edit that broke the JSON. Line counts from 1 (and equals the seq
// the record would have).
type LineError struct {
	// Line is the line's number, from 1.
	Line int64
	// Err says why it is not a record.
	Err error
}

// Error implements the error interface.
func (e *LineError) Error() string {
	return fmt.Sprintf("line %d is not a record: %v", e.Line, e.Err)
}

// Unwrap returns the cause.
func (e *LineError) Unwrap() error { return e.Err }

// fileRecord is the JSON form of a Record on one line. Details are the
// exact bytes that were hashed.
type fileRecord struct {
	Seq      int64           `json:"seq"`
	Time     string          `json:"time"`
	Actor    string          `json:"actor"`
	Action   string          `json:"action"`
	Object   string          `json:"object"`
	Outcome  string          `json:"outcome"`
	Details  json.RawMessage `json:"details"`
	PrevHash string          `json:"prevHash"`
	Hash     string          `json:"hash"`
}

// marshalLine encodes r as one line, newline included. HTML escaping is
// off so the details bytes are copied as they are.
func marshalLine(r Record) ([]byte, error) {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	err := enc.Encode(fileRecord{
		Seq: r.Seq, Time: r.Time.UTC().Format(time.RFC3339Nano), Actor: r.Actor, Action: r.Action, Object: r.Object,
		Outcome: r.Outcome, Details: r.Details, PrevHash: hex.EncodeToString(r.PrevHash), Hash: hex.EncodeToString(r.Hash),
	})
	if err != nil {
		return nil, fmt.Errorf("audit: encoding record %d: %w", r.Seq, err)
	}
	return buf.Bytes(), nil
}

// parseLine decodes one line strictly.
func parseLine(line []byte) (Record, error) {
	var fr fileRecord
	dec := json.NewDecoder(bytes.NewReader(line))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&fr); err != nil {
		return Record{}, err
	}
	if dec.More() {
		return Record{}, errors.New("trailing data")
	}
	t, err := time.Parse(time.RFC3339Nano, fr.Time)
	if err != nil {
		return Record{}, fmt.Errorf("time: %w", err)
	}
	prev, err := hex.DecodeString(fr.PrevHash)
	if err != nil {
		return Record{}, fmt.Errorf("prevHash: %w", err)
	}
	hash, err := hex.DecodeString(fr.Hash)
	if err != nil {
		return Record{}, fmt.Errorf("hash: %w", err)
	}
	if fr.Details == nil {
		return Record{}, errors.New("details missing")
	}
	return Record{Seq: fr.Seq, Time: t.UTC(), Actor: fr.Actor, Action: fr.Action, Object: fr.Object, Outcome: fr.Outcome,
		Details: bytes.Clone(fr.Details), PrevHash: prev, Hash: hash}, nil
}

// scan calls fn for every line of r in order; a line that does not decode
// is a *LineError.
func scan(ctx context.Context, r io.Reader, fn func(Record) error) error {
	br := bufio.NewReader(r)
	for n := int64(1); ; n++ {
		line, err := br.ReadBytes('\n')
		if errors.Is(err, io.EOF) && len(line) == 0 {
			return nil
		}
		if err != nil && !errors.Is(err, io.EOF) {
			return err
		}
		if len(line) == 0 || line[len(line)-1] != '\n' {
			return &LineError{Line: n, Err: errors.New("incomplete last line")}
		}
		rec, perr := parseLine(line)
		if perr != nil {
			return &LineError{Line: n, Err: perr}
		}
		if err := fn(rec); err != nil {
			return err
		}
		if err := ctx.Err(); err != nil {
			return err
		}
	}
}

// AuditRecords calls fn for every record with Seq >= fromSeq, in file
// order. A missing file is an empty chain; a line that is not a record
// stops the walk with a *LineError.
func (f *FileStore) AuditRecords(ctx context.Context, fromSeq int64, fn func(Record) error) error {
	fh, err := os.Open(f.path)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("audit: opening %s: %w", f.path, err)
	}
	defer fh.Close()
	return scan(ctx, fh, func(r Record) error {
		if r.Seq < fromSeq {
			return nil
		}
		return fn(r)
	})
}

// AuditHead returns the seq and hash of the last line (seq 0 and the
// genesis hash for a missing or empty file).
func (f *FileStore) AuditHead(ctx context.Context) (Head, error) {
	fh, err := os.Open(f.path)
	if errors.Is(err, os.ErrNotExist) {
		return Head{Hash: GenesisHash()}, nil
	}
	if err != nil {
		return Head{}, fmt.Errorf("audit: opening %s: %w", f.path, err)
	}
	defer fh.Close()
	return lastHead(ctx, fh)
}

func lastHead(ctx context.Context, r io.Reader) (Head, error) {
	h := Head{Hash: GenesisHash()}
	err := scan(ctx, r, func(rec Record) error {
		h = Head{Seq: rec.Seq, Hash: rec.Hash}
		return nil
	})
	return h, err
}

// AppendAuditRecords appends under an exclusive lock on the file (flock):
// it reads the head from the last line, has seal continue the chain,
// writes the new lines in one write and syncs the file (and, when the file
// was created, its folder) before returning. A file that does not end in a
// complete record is not appended to.
func (f *FileStore) AppendAuditRecords(ctx context.Context, seal func(head Head) ([]Record, error)) error {
	_, statErr := os.Stat(f.path)
	fh, err := os.OpenFile(f.path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return fmt.Errorf("audit: opening %s: %w", f.path, err)
	}
	defer fh.Close()
	if err := syscall.Flock(int(fh.Fd()), syscall.LOCK_EX); err != nil {
		return fmt.Errorf("audit: locking %s: %w", f.path, err)
	}
	head, err := lastHead(ctx, fh)
	if err != nil {
		return fmt.Errorf("audit: %s: %w", f.path, err)
	}
	recs, err := seal(head)
	if err != nil {
		return err
	}
	var out []byte
	for _, r := range recs {
		line, err := marshalLine(r)
		if err != nil {
			return err
		}
		out = append(out, line...)
	}
	if _, err := fh.Seek(0, io.SeekEnd); err != nil {
		return fmt.Errorf("audit: %s: %w", f.path, err)
	}
	if _, err := fh.Write(out); err != nil {
		return fmt.Errorf("audit: writing %s: %w", f.path, err)
	}
	if err := fh.Sync(); err != nil {
		return fmt.Errorf("audit: syncing %s: %w", f.path, err)
	}
	if errors.Is(statErr, os.ErrNotExist) {
		if d, err := os.Open(filepath.Dir(f.path)); err == nil {
			_ = d.Sync()
			d.Close()
		}
	}
	return nil
}
