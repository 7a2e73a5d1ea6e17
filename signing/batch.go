package signing

import (
	"bufio"
	"bytes"
	"context"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"mime/multipart"
	"net/http"
	"os"
	"runtime"
	"time"

	"github.com/thiqa/thiqa/internal/audit"
	"github.com/thiqa/thiqa/internal/outage"
	"github.com/thiqa/thiqa/internal/problem"
	"github.com/thiqa/thiqa/signer"
)

// The batch seal: many PDFs in one multipart request, one JSON answer.
// Every part is read first (small ones in memory, large ones spooled to
// unlinked temporary files), so that a refusal of the whole request still
// comes before any 200. Then the documents are sealed a few at a time
// through a sliding window and the answer streams: each result goes out,
// in the order of the parts, as soon as it and the ones before it are
// done, its document base64-encoded straight from the sealed bytes. A
// document starts only when the one batchWindow places before it has been
// written, so at most batchWindow sealed documents wait at any time, each
// in memory up to inMemoryBody and in an unlinked temporary file beyond:
// a full batch (100 parts of 32 MiB) needs a few MiB of memory, not the
// ten and more GiB of holding every result and its base64 and encoding
// the whole answer at once.

// batchPart is one part of a batch seal request, as read.
type batchPart struct {
	name    string
	in      pdfInput
	err     error // why the part cannot be sealed (refused at reading)
	cleanup func()
}

// batchWindow is how many documents of a batch are sealed, or sealed and
// waiting for their turn in the answer, at once.
func batchWindow() int {
	return max(2, runtime.GOMAXPROCS(0))
}

// sealBatch serves POST /api/v1/seal/batch?level=L&credential=ID. The body
// is multipart/form-data with one PDF per part (each at most 32 MiB, at
// most Config.MaxBatchDocuments parts); every document is sealed on its
// own and audited on its own. The answer (200) is a BatchResponse listing,
// in order, each document's status and sealed PDF (base64) or problem; it
// streams, result by result, and a refusal of the whole request (media
// type, no document, too many documents, a broken body) comes before it.
func (s *Service) sealBatch(w http.ResponseWriter, r *http.Request) {
	start := time.Now()
	rec := signRecord{action: ActionSeal, actor: agencyOf(r), level: "unknown"}
	q := r.URL.Query()
	level, cred, ok := s.callerCredential(w, r, q, &rec, "seal", OwnerAgency, start)
	if !ok {
		return
	}
	doc, err := documentOptions(q)
	if err != nil {
		s.fail(w, r, rec, "seal", start, err)
		return
	}
	mt, params, perr := mime.ParseMediaType(r.Header.Get("Content-Type"))
	if perr != nil || mt != "multipart/form-data" || params["boundary"] == "" {
		s.fail(w, r, rec, "seal", start, Refuse(ErrUnsupportedMediaType, "the body must be multipart/form-data with one PDF per part"))
		return
	}
	maxDocs := s.cfg.MaxBatchDocuments
	body := http.MaxBytesReader(w, r.Body, int64(maxDocs)*(maxBatchPart+4096))
	mr := multipart.NewReader(body, params["boundary"])
	var parts []*batchPart
	defer func() {
		for _, p := range parts {
			p.cleanup()
		}
	}()
	for {
		part, err := mr.NextPart()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			s.fail(w, r, rec, "seal", start, Refuse(ErrBadRequest, "reading the multipart body: %v", err))
			return
		}
		if len(parts) == maxDocs {
			part.Close()
			s.fail(w, r, rec, "seal", start, Refuse(ErrTooLarge, "a batch holds at most %d documents", maxDocs))
			return
		}
		p := &batchPart{name: part.FileName()}
		if p.name == "" {
			p.name = part.FormName()
		}
		p.in, p.cleanup, p.err = readDocument(part, -1, s.cfg.TempDir, maxBatchPart, nil)
		part.Close()
		parts = append(parts, p)
	}
	if len(parts) == 0 {
		s.fail(w, r, rec, "seal", start, Refuse(ErrBadRequest, "the batch holds no document"))
		return
	}
	s.streamBatch(w, r, rec, cred, level, doc, parts)
}

// batchSlot is one document of a batch on its way to the answer.
type batchSlot struct {
	done chan struct{} // closed when res and out are set
	res  BatchResult   // without its Document, which is out
	out  *sealedDoc    // the sealed PDF; nil when the document failed
}

// streamBatch seals parts through the sliding window and streams the
// answer. On every path it waits for the documents it started and drops
// what they sealed; when the answer cannot be written (the client went
// away) the documents not yet started are not sealed.
func (s *Service) streamBatch(w http.ResponseWriter, r *http.Request, rec signRecord, cred *Credential, level signer.Level, doc *DocumentOptions, parts []*batchPart) {
	ctx, cancel := context.WithCancel(r.Context())
	slots := make([]*batchSlot, 0, len(parts))
	startNext := func() {
		p, sl := parts[len(slots)], &batchSlot{done: make(chan struct{})}
		slots = append(slots, sl)
		go func() {
			defer close(sl.done)
			sl.res, sl.out = s.sealOne(ctx, rec, cred, level, doc, p)
		}()
	}
	defer func() {
		cancel()
		for _, sl := range slots {
			<-sl.done
			sl.out.Close()
		}
	}()
	for len(slots) < min(batchWindow(), len(parts)) {
		startNext()
	}

	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusOK)
	rc := http.NewResponseController(w)
	bw := bufio.NewWriterSize(w, 32<<10)
	written := 0
	err := writeBatchHead(bw, level.String())
	for err == nil && written < len(parts) {
		sl := slots[written]
		<-sl.done
		err = writeBatchResult(bw, written > 0, sl.res, sl.out)
		sl.out.Close() // written or not, it is not needed any more
		if err == nil {
			err = flushBatch(bw, rc)
		}
		if err != nil {
			break
		}
		written++
		if errors.Is(r.Context().Err(), context.Canceled) {
			err = fmt.Errorf("the client went away: %w", context.Cause(r.Context()))
			break
		}
		if len(slots) < len(parts) {
			startNext()
		}
	}
	if err == nil {
		err = writeBatchTail(bw)
	}
	if err != nil {
		// The status is sent: the client sees a truncated answer.
		s.logger.WarnContext(r.Context(), "the batch seal answer was cut short", "credential", rec.credential,
			"documents", len(parts), "written", written, "started", len(slots), "err", err)
	}
}

// flushBatch sends what bw holds on to the client, so that each result leaves
// as soon as it is written.
func flushBatch(bw *bufio.Writer, rc *http.ResponseController) error {
	if err := bw.Flush(); err != nil {
		return fmt.Errorf("writing the batch answer: %w", err)
	}
	if err := rc.Flush(); err != nil && !errors.Is(err, http.ErrNotSupported) {
		return fmt.Errorf("flushing the batch answer: %w", err)
	}
	return nil
}

// sealOne seals one document of a batch and audits it on its own (the
// audit record of a success is written before the sealed bytes exist). It
// returns the result without its document, and the sealed document (nil
// when the document was refused or failed); the caller closes it.
func (s *Service) sealOne(ctx context.Context, rec signRecord, cred *Credential, level signer.Level, doc *DocumentOptions, p *batchPart) (BatchResult, *sealedDoc) {
	start := time.Now()
	if doc != nil {
		own := *doc // each document's warnings are its own
		doc = &own
	}
	rec.name = p.name
	res := BatchResult{Name: p.name}
	failed := func(err error) (BatchResult, *sealedDoc) {
		status, msg, outcome := Classify(err)
		if aerr := s.auditSign(ctx, rec, outcome, msg); aerr != nil && !errors.Is(err, ErrAudit) {
			// A document's refusal without its record is a failure (fail).
			status, msg, outcome = Classify(refusalUnrecorded(err, aerr))
		}
		s.Observe("seal", rec.level, outcome, time.Since(start))
		res.Status, res.Problem = status, &problem.Details{Status: status, Title: http.StatusText(status), Detail: msg}
		return res, nil
	}
	if p.err != nil {
		return failed(p.err)
	}
	rec.size = p.in.size
	var out *sealedDoc
	var digest []byte
	_, err := s.signPDF(ctx, rec, cred, level, p.in, doc, func(d []byte, size int64) (io.Writer, error) {
		digest = d
		var err error
		out, err = newSealedDoc(size, s.cfg.TempDir)
		return out, err
	}, nil, nil)
	if err != nil {
		out.Close()
		return failed(err)
	}
	s.Observe("seal", rec.level, audit.OutcomeSuccess, time.Since(start))
	res.Status, res.DocumentDigest = http.StatusOK, hex.EncodeToString(digest)
	res.Warnings = doc.Warnings()
	return res, out
}

// sealedDoc holds a sealed document of a batch until its turn in the
// answer: in memory up to inMemoryBody, in an unlinked temporary file
// beyond.
type sealedDoc struct {
	mem  []byte
	file *os.File
	size int64
}

// newSealedDoc makes the holder of a sealed document of size bytes, its
// temporary file (if it needs one) in dir.
func newSealedDoc(size int64, dir string) (*sealedDoc, error) {
	if size <= inMemoryBody {
		return &sealedDoc{mem: make([]byte, 0, size)}, nil
	}
	f, err := os.CreateTemp(dir, "thiqa-sealed-*.pdf")
	if err != nil {
		return nil, fmt.Errorf("temporary file for a sealed document: %w", outage.MarkStorage(err))
	}
	os.Remove(f.Name()) // the open descriptor keeps it until closed
	return &sealedDoc{file: f}, nil
}

// Write appends b to the document.
func (d *sealedDoc) Write(b []byte) (int, error) {
	if d.file == nil {
		d.mem = append(d.mem, b...)
		d.size += int64(len(b))
		return len(b), nil
	}
	n, err := d.file.Write(b)
	d.size += int64(n)
	if err != nil {
		return n, fmt.Errorf("spooling a sealed document: %w", outage.MarkStorage(err))
	}
	return n, nil
}

// reader reads the document from its start.
func (d *sealedDoc) reader() io.Reader {
	if d.file == nil {
		return bytes.NewReader(d.mem)
	}
	return io.NewSectionReader(d.file, 0, d.size)
}

// Close releases the document, its temporary file included; it may be
// called more than once, and on nil.
func (d *sealedDoc) Close() {
	if d == nil {
		return
	}
	if d.file != nil {
		d.file.Close()
		d.file = nil
	}
	d.mem, d.size = nil, 0
}

// writeBatchHead starts a BatchResponse: `{"level":…,"results":[`.
func writeBatchHead(w io.Writer, level string) error {
	lv, err := json.Marshal(level)
	if err != nil {
		return fmt.Errorf("encoding the batch answer: %w", err)
	}
	b := append(append([]byte(`{"level":`), lv...), `,"results":[`...)
	if _, err := w.Write(b); err != nil {
		return fmt.Errorf("writing the batch answer: %w", err)
	}
	return nil
}

// documentMark stands for the document in the encoding of a BatchResult:
// `"document":"-"` cannot occur inside a JSON string (its quotes would be
// escaped there), so it marks where the document goes.
const documentMark = `"document":"-"`

// writeBatchResult writes res as one element of the results array (after
// a comma unless first), its document the base64 of out: the same bytes
// as encoding/json gives for res with Document set to that base64, the
// document encoded on the way instead of held as a string.
func writeBatchResult(w io.Writer, comma bool, res BatchResult, out *sealedDoc) error {
	res.Document = ""
	if out != nil {
		res.Document = "-"
	}
	b, err := json.Marshal(res)
	if err != nil {
		return fmt.Errorf("encoding a batch result: %w", err)
	}
	head, tail := b, []byte(nil)
	if out != nil {
		at := bytes.Index(b, []byte(documentMark))
		if at < 0 {
			return errors.New("encoding a batch result: no place for the document")
		}
		head, tail = b[:at+len(documentMark)-2], b[at+len(documentMark)-1:] // up to the opening quote, from the closing one
	}
	if comma {
		if _, err := io.WriteString(w, ","); err != nil {
			return fmt.Errorf("writing the batch answer: %w", err)
		}
	}
	if _, err := w.Write(head); err != nil {
		return fmt.Errorf("writing the batch answer: %w", err)
	}
	if out != nil {
		enc := base64.NewEncoder(base64.StdEncoding, w)
		if _, err := io.Copy(enc, out.reader()); err != nil {
			return fmt.Errorf("writing a sealed document of the batch: %w", err)
		}
		if err := enc.Close(); err != nil {
			return fmt.Errorf("writing a sealed document of the batch: %w", err)
		}
		if _, err := w.Write(tail); err != nil {
			return fmt.Errorf("writing the batch answer: %w", err)
		}
	}
	return nil
}

// writeBatchTail ends a BatchResponse as json.Encoder does, with a newline,
// and sends what is buffered.
func writeBatchTail(bw *bufio.Writer) error {
	if _, err := bw.WriteString("]}\n"); err != nil {
		return fmt.Errorf("writing the batch answer: %w", err)
	}
	if err := bw.Flush(); err != nil {
		return fmt.Errorf("writing the batch answer: %w", err)
	}
	return nil
}
