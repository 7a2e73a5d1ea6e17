package audit

import (
	"bytes"
	"context"
	"crypto"
	"crypto/ecdsa"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"syscall"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// checkpointTimeout bounds one checkpoint (head read, signature, write).
const checkpointTimeout = 30 * time.Second

// HeadReader reads the chain head; store.DB implements it.
type HeadReader interface {
	AuditHead(ctx context.Context) (Head, error)
}

// CheckpointWriterOptions tunes a CheckpointWriter. Zero values mean the
// defaults.
type CheckpointWriterOptions struct {
	// Logger receives failures and warnings (default: discard).
	Logger *slog.Logger
	// Registerer receives thiqa_audit_checkpoints_total (may be nil).
	Registerer prometheus.Registerer
	// Now is the clock (default time.Now).
	Now func() time.Time
}

// CheckpointWriter appends signed checkpoints of the chain head to a file
// outside the database, one JSON line each. It is safe for concurrent use,
// and several processes may share one file: each checkpoint is written
// under an exclusive flock(2) on the file, after reading the file's last
// line, so seqs and times never go backwards in the file.
type CheckpointWriter struct {
	chain  ChainReader
	signer crypto.Signer
	path   string
	logger *slog.Logger
	now    func() time.Time
	total  *prometheus.CounterVec
}

// Results of one attempt, the label of thiqa_audit_checkpoints_total.
const (
	checkpointWritten   = "written"
	checkpointUnchanged = "unchanged"
	checkpointFailed    = "failed"
)

// NewCheckpointWriter returns a writer signing checkpoints of the head
// chain reports with signer (an ECDSA key) into the file at path. The
// file's folder is created (0700) when missing; the file itself (0600) at
// the first checkpoint.
func NewCheckpointWriter(chain ChainReader, signer crypto.Signer, path string, opts CheckpointWriterOptions) (*CheckpointWriter, error) {
	if _, ok := signer.Public().(*ecdsa.PublicKey); !ok {
		return nil, fmt.Errorf("audit: checkpoint key must be ECDSA, not %T", signer.Public())
	}
	if path == "" {
		return nil, errors.New("audit: no checkpoint file")
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return nil, fmt.Errorf("audit: creating the checkpoint folder: %w", err)
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	total := register(opts.Registerer, prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "thiqa_audit_checkpoints_total",
		Help: "Attempts to write a signed audit checkpoint, by result (written, unchanged, failed).",
	}, []string{"result"}))
	// Every result is exported from the start, so that the first failure
	// is an increase an alert rule can see, not a new series.
	for _, r := range []string{checkpointWritten, checkpointUnchanged, checkpointFailed} {
		total.WithLabelValues(r)
	}
	return &CheckpointWriter{
		chain: chain, signer: signer, path: path, logger: opts.Logger, now: opts.Now, total: total,
	}, nil
}

// Run writes a checkpoint at once (so that a head behind the file, a
// database rolled back while the server was down, is logged at start) and
// then every interval until ctx ends. Failures are logged and counted,
// never fatal.
func (w *CheckpointWriter) Run(ctx context.Context, every time.Duration) {
	_, _, _ = w.Checkpoint(ctx)
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			_, _, _ = w.Checkpoint(ctx)
		}
	}
}

// Final writes a last checkpoint at shutdown, once nothing appends any
// more (bounded by the timeout of one checkpoint), and logs it when the
// head had moved. A failure is logged and counted like any other.
func (w *CheckpointWriter) Final() {
	if c, written, err := w.Checkpoint(context.Background()); err == nil && written {
		w.logger.Info("audit checkpoint written at shutdown", "seq", c.Seq, "file", w.path)
	}
}

// Checkpoint signs the current head and appends it to the file, unless
// the head has not moved since the file's last checkpoint (then it returns
// that checkpoint and false). A head behind the last checkpoint, or at its
// seq with another hash, is an error: the database was rolled back or
// rewritten, and writing would only hide it. Every failure is also logged
// and counted.
func (w *CheckpointWriter) Checkpoint(ctx context.Context) (Checkpoint, bool, error) {
	ctx, cancel := context.WithTimeout(ctx, checkpointTimeout)
	defer cancel()
	c, written, err := w.checkpoint(ctx)
	switch {
	case err != nil:
		w.total.WithLabelValues(checkpointFailed).Inc()
		w.logger.Error("audit: checkpoint failed", "file", w.path, "err", err)
	case written:
		w.total.WithLabelValues(checkpointWritten).Inc()
		w.logger.Debug("audit: checkpoint written", "file", w.path, "seq", c.Seq)
	default:
		w.total.WithLabelValues(checkpointUnchanged).Inc()
	}
	return c, written, err
}

func (w *CheckpointWriter) checkpoint(ctx context.Context) (Checkpoint, bool, error) {
	f, err := os.OpenFile(w.path, os.O_RDWR|os.O_APPEND|os.O_CREATE, 0o600)
	if err != nil {
		return Checkpoint{}, false, fmt.Errorf("audit: opening the checkpoint file: %w", err)
	}
	defer f.Close()
	if err := w.lock(ctx, f); err != nil {
		return Checkpoint{}, false, err
	}
	// Closing the file releases the lock.

	last, err := w.lastCheckpoint(f)
	if err != nil {
		return Checkpoint{}, false, err
	}
	head, err := w.chain.AuditHead(ctx)
	if err != nil {
		return Checkpoint{}, false, fmt.Errorf("audit: reading the head: %w", err)
	}
	if head.Seq == 0 {
		return Checkpoint{}, false, nil // nothing to vouch for yet
	}
	now := w.now()
	if last != nil {
		switch {
		case head.Seq == last.Seq && bytes.Equal(head.Hash, last.Hash):
			return *last, false, nil
		case head.Seq < last.Seq:
			return Checkpoint{}, false, fmt.Errorf("audit: the head (seq %d) is behind the last checkpoint (seq %d): records were removed or the database was rolled back", head.Seq, last.Seq)
		case head.Seq == last.Seq:
			return Checkpoint{}, false, fmt.Errorf("audit: record %d is not the one the last checkpoint names: the chain was rewritten", head.Seq)
		case now.Before(last.Time):
			return Checkpoint{}, false, fmt.Errorf("audit: the clock (%s) is behind the last checkpoint's time (%s)",
				now.UTC().Format(time.RFC3339Nano), last.Time.Format(time.RFC3339Nano))
		}
		// The head moved on: the record the last checkpoint names must
		// still be there, unchanged, or this checkpoint would vouch for a
		// rewritten chain.
		h, err := w.recordHash(ctx, last.Seq)
		if err == nil && h == nil {
			// Archived (thiqa audit archive): the archived range that ends
			// there records the hash instead.
			h, err = w.archivedHash(ctx, *last)
		}
		switch {
		case err != nil:
			return Checkpoint{}, false, fmt.Errorf("audit: reading record %d: %w", last.Seq, err)
		case h == nil:
			return Checkpoint{}, false, fmt.Errorf("audit: record %d, which the last checkpoint names, is missing: records were removed", last.Seq)
		case !bytes.Equal(h, last.Hash):
			return Checkpoint{}, false, fmt.Errorf("audit: record %d is not the one the last checkpoint names: the chain was rewritten", last.Seq)
		}
	}
	c, err := SignCheckpoint(w.signer, head, now)
	if err != nil {
		return Checkpoint{}, false, err
	}
	line, err := c.MarshalLine()
	if err != nil {
		return Checkpoint{}, false, err
	}
	st, err := f.Stat()
	if err != nil {
		return Checkpoint{}, false, fmt.Errorf("audit: checkpoint file: %w", err)
	}
	// A full disk takes part of the line: cut it off at once, so that the
	// file never ends in a torn line (which the next checkpoint would
	// otherwise cut, warning of a crash).
	if _, err := f.Write(line); err != nil {
		return Checkpoint{}, false, errors.Join(fmt.Errorf("audit: writing the checkpoint: %w", err), f.Truncate(st.Size()))
	}
	if err := f.Sync(); err != nil {
		return Checkpoint{}, false, errors.Join(fmt.Errorf("audit: syncing the checkpoint file: %w", err), f.Truncate(st.Size()))
	}
	return c, true, nil
}

// lockRetry is how often a busy checkpoint file lock is tried again.
const lockRetry = 20 * time.Millisecond

// lock takes an exclusive flock on f, giving up when ctx ends (a process
// holding the lock for ever must not stall the server's shutdown).
func (w *CheckpointWriter) lock(ctx context.Context, f *os.File) error {
	warned := false
	for {
		err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB)
		switch {
		case err == nil:
			return nil
		case !errors.Is(err, syscall.EWOULDBLOCK) && !errors.Is(err, syscall.EINTR):
			return fmt.Errorf("audit: locking the checkpoint file: %w", err)
		}
		if !warned {
			w.logger.Warn("audit: waiting for the checkpoint file's lock, held by another process", "file", w.path)
			warned = true
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("audit: locking the checkpoint file: another process holds it: %w", ctx.Err())
		case <-time.After(lockRetry):
		}
	}
}

// recordHash returns the stored hash of record seq, nil when there is none.
func (w *CheckpointWriter) recordHash(ctx context.Context, seq int64) ([]byte, error) {
	return RecordHash(ctx, w.chain, seq)
}

// archivedHash returns the hash the archived ranges record for the
// record c names, when it is archived: c's own hash when no range ends
// there with another, the range's otherwise; nil when it is not archived.
func (w *CheckpointWriter) archivedHash(ctx context.Context, c Checkpoint) ([]byte, error) {
	p, err := ReadArchivedPrefix(ctx, w.chain)
	if err != nil || c.Seq >= p.Below {
		return nil, err
	}
	if h, ok := p.ends[c.Seq]; ok {
		return h, nil
	}
	return c.Hash, nil
}

// lastCheckpoint returns the file's last checkpoint (nil for an empty
// file). An incomplete last line, which a crash in the middle of a write
// leaves, is cut off (with a warning) so that the next line does not glue
// onto it. A last complete line that does not parse is an error: writing
// after it would bury it in the middle of the file.
func (w *CheckpointWriter) lastCheckpoint(f *os.File) (*Checkpoint, error) {
	st, err := f.Stat()
	if err != nil {
		return nil, fmt.Errorf("audit: checkpoint file: %w", err)
	}
	size := st.Size()
	if size == 0 {
		return nil, nil
	}
	n := min(size, 2*MaxCheckpointLine+2)
	tail := make([]byte, n)
	if _, err := f.ReadAt(tail, size-n); err != nil {
		return nil, fmt.Errorf("audit: reading the checkpoint file: %w", err)
	}
	end := bytes.LastIndexByte(tail, '\n')
	if end < len(tail)-1 {
		// The last line is incomplete.
		if end < 0 && n < size {
			return nil, fmt.Errorf("audit: the checkpoint file's last line is longer than %d bytes", MaxCheckpointLine)
		}
		keep := size - n + int64(end+1)
		w.logger.Warn("audit: cutting an incomplete last line off the checkpoint file (a crash while writing?)",
			"file", w.path, "bytes", size-keep)
		if err := f.Truncate(keep); err != nil {
			return nil, fmt.Errorf("audit: cutting the incomplete last line: %w", err)
		}
		if end < 0 {
			return nil, nil
		}
		tail = tail[:end+1]
	}
	start := bytes.LastIndexByte(tail[:len(tail)-1], '\n') + 1
	c, err := ParseCheckpointLine(tail[start:])
	if err != nil {
		return nil, fmt.Errorf("audit: the checkpoint file's last line: %w", err)
	}
	return &c, nil
}
