package main

import (
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
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/thiqa/thiqa/internal/audit"
	"github.com/thiqa/thiqa/internal/auth"
	"github.com/thiqa/thiqa/internal/pin"
	"github.com/thiqa/thiqa/internal/problem"
	"github.com/thiqa/thiqa/signer"
	"github.com/thiqa/thiqa/store"
)

// PINHeader carries the citizen's signing PIN on POST /api/v1/sign. The PIN
// is checked after the document is prepared and before the key is used, so
// it authorises exactly this document's digest, once.
const PINHeader = "X-Thiqa-PIN"

// DigestHeader names the hex ByteRange digest of a signed or sealed PDF.
const DigestHeader = "X-Thiqa-Document-Digest"

// inMemoryBody is the largest body kept in memory; larger PDFs are streamed
// to a temporary file (a 200 MB PDF never sits in the process's memory).
const inMemoryBody = 2 << 20

// maxBatchPart bounds one document of a batch seal.
const maxBatchPart = 32 << 20

// signingHTTP serves the signing endpoints.
type signingHTTP struct {
	s *signingService
	// bodies keeps request-body buffers (*[]byte, at most pooledBody
	// bytes) for reuse by the next document.
	bodies sync.Pool
}

// pooledBody is the largest body buffer kept for reuse.
const pooledBody = 1 << 20

// bodyBuffer returns a buffer for a body of size bytes (plus one, to see a
// longer body), nil when the size is unknown or too large to keep.
func (h *signingHTTP) bodyBuffer(size int64) *[]byte {
	if size < 0 || size+1 > pooledBody {
		return nil
	}
	if bp, _ := h.bodies.Get().(*[]byte); bp != nil && int64(cap(*bp)) >= size+1 {
		return bp
	}
	// A fresh one, sized for its size class so it serves similar bodies.
	n := int64(64 << 10)
	for n < size+1 {
		n *= 2
	}
	b := make([]byte, 0, n)
	return &b
}

func (h *signingHTTP) releaseBody(bp *[]byte) {
	if bp != nil {
		h.bodies.Put(bp)
	}
}

// httpError is a refusal or failure with its HTTP status.
type httpError struct {
	status int
	msg    string
	err    error
}

func (e *httpError) Error() string { return e.msg }
func (e *httpError) Unwrap() error { return e.err }

func refuse(status int, format string, args ...any) error {
	return &httpError{status: status, msg: fmt.Sprintf(format, args...)}
}

// classify maps an error of the signing path to an HTTP status, a message
// for the caller and the audit outcome.
func classify(err error) (int, string, string) {
	var he *httpError
	var we *pin.WrongError
	switch {
	case errors.As(err, &he):
		return he.status, he.msg, audit.OutcomeRefused
	case errors.Is(err, errCredentialRefused):
		return http.StatusForbidden, err.Error(), audit.OutcomeRefused
	case errors.Is(err, pin.ErrLocked):
		return http.StatusLocked, "the signing PIN is locked after too many wrong tries", audit.OutcomeRefused
	case errors.As(err, &we):
		return http.StatusForbidden, we.Error(), audit.OutcomeRefused
	case errors.Is(err, pin.ErrNotSet):
		return http.StatusForbidden, "no signing PIN is set for this credential: set it first (POST /api/v1/credentials/{id}/pin)", audit.OutcomeRefused
	case errors.Is(err, pin.ErrPolicy):
		return http.StatusBadRequest, err.Error(), audit.OutcomeRefused
	case errors.Is(err, signer.ErrNotPDF), errors.Is(err, signer.ErrEncrypted), errors.Is(err, signer.ErrMalformed),
		errors.Is(err, signer.ErrCertificationForbids), errors.Is(err, signer.ErrAlreadySigned), errors.Is(err, signer.ErrOptions):
		return http.StatusBadRequest, err.Error(), audit.OutcomeRefused
	case errors.Is(err, signer.ErrTimestamp):
		if s := err.Error(); strings.Contains(s, "deadline") || strings.Contains(s, "imeout") {
			return http.StatusGatewayTimeout, "the time-stamp authority did not answer in time; nothing was signed", audit.OutcomeFailure
		}
		return http.StatusBadGateway, "the time-stamp authority failed; nothing was signed: " + err.Error(), audit.OutcomeFailure
	case errors.Is(err, signer.ErrRevocation):
		return http.StatusBadGateway, "revocation data unavailable; nothing was signed: " + err.Error(), audit.OutcomeFailure
	case errors.Is(err, context.DeadlineExceeded):
		return http.StatusGatewayTimeout, "timed out; nothing was signed", audit.OutcomeFailure
	}
	return http.StatusInternalServerError, "signing failed", audit.OutcomeFailure
}

// readPDF takes the request body: small bodies in memory, larger ones
// streamed to an unlinked temporary file. cleanup must be called.
func (h *signingHTTP) readPDF(w http.ResponseWriter, r *http.Request) (pdfInput, func(), error) {
	none := func() {}
	mt, _, err := mime.ParseMediaType(r.Header.Get("Content-Type"))
	if err != nil || mt != "application/pdf" {
		return pdfInput{}, none, refuse(http.StatusUnsupportedMediaType, "the body must be a PDF sent as application/pdf")
	}
	limit := h.s.cfg.MaxDocumentBytes
	if r.ContentLength > limit {
		return pdfInput{}, none, refuse(http.StatusRequestEntityTooLarge, "the document exceeds %d bytes", limit)
	}
	body := http.MaxBytesReader(w, r.Body, limit)
	bp := h.bodyBuffer(r.ContentLength)
	var buf []byte
	if bp != nil {
		buf = *bp
	}
	in, cleanup, err := readDocument(body, r.ContentLength, h.s.cfg.TempDir, limit, buf)
	return in, func() { cleanup(); h.releaseBody(bp) }, err
}

// readDocument reads one document from body (size -1 when unknown). buf,
// when large enough, holds a small document of known size.
func readDocument(body io.Reader, size int64, tempDir string, limit int64, buf []byte) (pdfInput, func(), error) {
	none := func() {}
	tooBig := func(err error) error {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			return refuse(http.StatusRequestEntityTooLarge, "the document exceeds %d bytes", limit)
		}
		return refuse(http.StatusBadRequest, "reading the document: %v", err)
	}
	if size <= inMemoryBody {
		// Small documents stay in memory: the announced size in one
		// allocation, or up to inMemoryBody when the size is unknown.
		var b []byte
		var err error
		if size >= 0 {
			if int64(cap(buf)) >= size+1 {
				b = buf[:size+1]
			} else {
				b = make([]byte, size+1)
			}
			var n int
			n, err = io.ReadFull(body, b)
			b = b[:n]
			if int64(n) < size && err != nil {
				if errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, io.EOF) {
					return pdfInput{}, none, refuse(http.StatusBadRequest, "the body is shorter than its Content-Length")
				}
				return pdfInput{}, none, tooBig(err)
			}
		} else {
			b, err = io.ReadAll(io.LimitReader(body, inMemoryBody+1))
			if err != nil {
				return pdfInput{}, none, tooBig(err)
			}
		}
		if len(b) <= inMemoryBody && (size < 0 || int64(len(b)) == size) {
			return pdfInput{r: signer.Bytes(b), size: int64(len(b))}, none, checkPDFHeader(bytes.NewReader(b))
		}
		body = io.MultiReader(bytes.NewReader(b), body)
	}
	f, err := os.CreateTemp(tempDir, "thiqa-sign-*.pdf")
	if err != nil {
		return pdfInput{}, none, fmt.Errorf("temporary file: %w", err)
	}
	os.Remove(f.Name()) // the open descriptor keeps it until closed
	cleanup := func() { f.Close() }
	n, err := io.Copy(f, io.LimitReader(body, limit+1))
	if err != nil {
		cleanup()
		return pdfInput{}, none, tooBig(err)
	}
	if n > limit {
		cleanup()
		return pdfInput{}, none, refuse(http.StatusRequestEntityTooLarge, "the document exceeds %d bytes", limit)
	}
	return pdfInput{r: f, size: n}, cleanup, checkPDFHeader(io.NewSectionReader(f, 0, n))
}

// checkPDFHeader refuses a body that does not start like a PDF.
func checkPDFHeader(r io.Reader) error {
	var head [1024]byte
	n, _ := io.ReadFull(r, head[:])
	if !bytes.Contains(head[:n], []byte("%PDF-")) {
		return refuse(http.StatusBadRequest, "not a PDF document (no %%PDF- header)")
	}
	return nil
}

// query reads the level and credential parameters.
func levelAndCredential(r *http.Request) (signer.Level, string, error) {
	lv := r.URL.Query().Get("level")
	if lv == "" {
		lv = "B-B"
	}
	level, err := signer.ParseLevel(lv)
	if err != nil {
		return 0, "", refuse(http.StatusBadRequest, "level must be B-B, B-T, B-LT or B-LTA, got %q", lv)
	}
	cred := r.URL.Query().Get("credential")
	if cred == "" {
		return 0, "", refuse(http.StatusBadRequest, "the credential query parameter is required")
	}
	return level, cred, nil
}

// fail answers err as a problem after auditing the refusal or failure.
func (h *signingHTTP) fail(w http.ResponseWriter, r *http.Request, rec signRecord, op string, start time.Time, err error) {
	status, msg, outcome := classify(err)
	if status >= 500 {
		h.s.logger.WarnContext(r.Context(), "signing failed", "action", rec.action, "credential", rec.credential, "err", err)
	}
	_ = h.s.auditSign(r.Context(), rec, outcome, msg)
	h.s.metrics.observe(op, rec.level, outcome, time.Since(start))
	problem.Write(w, problem.Details{Status: status, Detail: msg, Instance: r.URL.Path})
}

// agencyOf and citizenOf name the authenticated caller.
func agencyOf(r *http.Request) string {
	if pr, ok := auth.FromContext(r.Context()); ok {
		return pr.OrganizationIdentifier
	}
	return ""
}

func citizenOf(r *http.Request) string {
	if pr, ok := auth.FromContext(r.Context()); ok {
		return pr.CivilNumber
	}
	return ""
}

// seal serves POST /api/v1/seal?level=L&credential=ID: the body is the PDF,
// the answer the sealed PDF (streamed), with the ByteRange digest in
// X-Thiqa-Document-Digest.
func (h *signingHTTP) seal(w http.ResponseWriter, r *http.Request) {
	h.signDocument(w, r, actionSeal, "seal", store.OwnerAgency, agencyOf(r), nil, nil)
}

// sign serves POST /api/v1/sign?level=L&credential=ID for citizens: the PIN
// in X-Thiqa-PIN is checked against the credential's PIN once the document
// digest is known and before the key is used (sole control: one PIN entry,
// one document digest, one signature).
func (h *signingHTTP) sign(w http.ResponseWriter, r *http.Request) {
	pinValue := r.Header.Get(PINHeader)
	r.Header.Del(PINHeader)
	actor := citizenOf(r)
	h.signDocument(w, r, actionSign, "sign", store.OwnerCitizen, actor, func(ctx context.Context, credID string, digest, _ []byte) error {
		if pinValue == "" {
			return refuse(http.StatusUnauthorized, "the signing PIN is required in the %s header", PINHeader)
		}
		err := h.s.pins.Check(ctx, credID, pinValue)
		outcome, reason := audit.OutcomeSuccess, ""
		details := map[string]any{"documentDigest": hex.EncodeToString(digest), "method": "pin"}
		if err != nil {
			_, reason, outcome = classify(err)
			details["caller"] = auth.CallerOf(ctx)
		}
		details["reason"] = reason
		if _, aerr := h.s.audit.Append(ctx, audit.Entry{Actor: actor, Action: actionAuthorize, Object: credID, Outcome: outcome,
			Details: details}); aerr != nil && err == nil {
			return fmt.Errorf("%w: %v", errAudit, aerr)
		}
		return err
	}, nil)
}

// callerCredential opens a request on one of the caller's own
// credentials: rec.actor (the caller's identity of kind, agency or citizen)
// must be set, the level and the credential come from the query, and the
// credential must be the caller's. It fills rec's credential and level. On
// a refusal it has answered, audited and counted it, and ok is false.
func (h *signingHTTP) callerCredential(w http.ResponseWriter, r *http.Request, rec *signRecord, op, kind string, start time.Time) (level signer.Level, cred *signingCredential, ok bool) {
	owner := rec.actor
	if owner == "" {
		rec.actor = "unidentified-caller"
		h.fail(w, r, *rec, op, start, refuse(http.StatusForbidden, "the caller has no %s identity", kind))
		return 0, nil, false
	}
	level, credID, err := levelAndCredential(r)
	rec.credential = credID
	if err != nil {
		h.fail(w, r, *rec, op, start, err)
		return 0, nil, false
	}
	rec.level = level.String()
	cred, err = h.s.credential(r.Context(), credID, kind, owner)
	if err != nil {
		h.fail(w, r, *rec, op, start, err)
		return 0, nil, false
	}
	return level, cred, true
}

func (h *signingHTTP) signDocument(w http.ResponseWriter, r *http.Request, action, op, kind, owner string,
	authorize func(ctx context.Context, credID string, digest, dtbs []byte) error, tune func(*signer.Options)) {
	start := time.Now()
	rec := signRecord{action: action, actor: owner, level: "unknown"}
	level, cred, ok := h.callerCredential(w, r, &rec, op, kind, start)
	if !ok {
		return
	}
	credID := rec.credential
	in, cleanup, err := h.readPDF(w, r)
	defer cleanup()
	if err != nil {
		h.fail(w, r, rec, op, start, err)
		return
	}
	rec.size = in.size
	var az func(ctx context.Context, digest, dtbs []byte) error
	if authorize != nil {
		az = func(ctx context.Context, digest, dtbs []byte) error { return authorize(ctx, credID, digest, dtbs) }
	}
	res, err := h.s.signPDF(r.Context(), rec, cred, level, in, func(digest []byte, size int64) (io.Writer, error) {
		// With its length known the answer goes out unchunked, the
		// document in one write.
		hdr := w.Header()
		hdr["Content-Type"] = []string{"application/pdf"}
		hdr["Content-Length"] = []string{strconv.FormatInt(size, 10)}
		hdr[DigestHeader] = []string{hex.EncodeToString(digest)}
		w.WriteHeader(http.StatusOK)
		return w, nil
	}, az, tune)
	if err != nil {
		if errors.Is(err, errAudit) || w.Header().Get(DigestHeader) == "" {
			h.fail(w, r, rec, op, start, err)
			return
		}
		// The response had started: the client sees a truncated body.
		h.s.logger.ErrorContext(r.Context(), "writing the signed document failed", "credential", credID, "err", err)
		return
	}
	h.s.metrics.observe(op, res.Level.String(), audit.OutcomeSuccess, time.Since(start))
}

// BatchResult is one document's outcome in a batch seal answer.
type BatchResult struct {
	// Name is the multipart part's file name (or form name).
	Name string `json:"name"`
	// Status is the HTTP status this document alone would have had.
	Status int `json:"status"`
	// DocumentDigest is the hex ByteRange digest of the sealed document.
	DocumentDigest string `json:"documentDigest,omitempty"`
	// Document is the sealed PDF, base64.
	Document string `json:"document,omitempty"`
	// Problem explains a refusal or failure.
	Problem *problem.Details `json:"problem,omitempty"`
}

// BatchResponse is the answer of POST /api/v1/seal/batch.
type BatchResponse struct {
	Level   string        `json:"level"`
	Results []BatchResult `json:"results"`
}

// sealBatch serves POST /api/v1/seal/batch?level=L&credential=ID. The body
// is multipart/form-data with one PDF per part (each at most 32 MiB, at
// most signing.maxBatchDocuments parts); every document is sealed on its
// own and audited on its own. The answer (200) is a BatchResponse listing,
// in order, each document's status and sealed PDF (base64) or problem.
func (h *signingHTTP) sealBatch(w http.ResponseWriter, r *http.Request) {
	start := time.Now()
	rec := signRecord{action: actionSeal, actor: agencyOf(r), level: "unknown"}
	level, cred, ok := h.callerCredential(w, r, &rec, "seal", store.OwnerAgency, start)
	if !ok {
		return
	}
	mt, params, err := mime.ParseMediaType(r.Header.Get("Content-Type"))
	if err != nil || mt != "multipart/form-data" || params["boundary"] == "" {
		h.fail(w, r, rec, "seal", start, refuse(http.StatusUnsupportedMediaType, "the body must be multipart/form-data with one PDF per part"))
		return
	}
	maxDocs := h.s.cfg.MaxBatchDocuments
	body := http.MaxBytesReader(w, r.Body, int64(maxDocs)*(maxBatchPart+4096))
	mr := multipart.NewReader(body, params["boundary"])
	// Read every part first (small ones in memory, large ones spooled to
	// unlinked temporary files), then seal them in parallel.
	type item struct {
		name    string
		in      pdfInput
		err     error
		cleanup func()
	}
	var items []*item
	defer func() {
		for _, it := range items {
			it.cleanup()
		}
	}()
	for {
		part, err := mr.NextPart()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			h.fail(w, r, rec, "seal", start, refuse(http.StatusBadRequest, "reading the multipart body: %v", err))
			return
		}
		if len(items) == maxDocs {
			part.Close()
			h.fail(w, r, rec, "seal", start, refuse(http.StatusRequestEntityTooLarge, "a batch holds at most %d documents", maxDocs))
			return
		}
		it := &item{name: part.FileName()}
		if it.name == "" {
			it.name = part.FormName()
		}
		it.in, it.cleanup, it.err = readDocument(part, -1, h.s.cfg.TempDir, maxBatchPart, nil)
		part.Close()
		items = append(items, it)
	}
	if len(items) == 0 {
		h.fail(w, r, rec, "seal", start, refuse(http.StatusBadRequest, "the batch holds no document"))
		return
	}
	out := BatchResponse{Level: level.String(), Results: make([]BatchResult, len(items))}
	var wg sync.WaitGroup
	sem := make(chan struct{}, max(2, runtime.GOMAXPROCS(0)))
	for i, it := range items {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			out.Results[i] = h.sealOne(r, rec, cred, level, it.name, it.in, it.err)
		}()
	}
	wg.Wait()
	writeJSON(w, http.StatusOK, out)
}

func (h *signingHTTP) sealOne(r *http.Request, rec signRecord, cred *signingCredential, level signer.Level, name string, in pdfInput, readErr error) BatchResult {
	start := time.Now()
	rec.name = name
	res := BatchResult{Name: name}
	failed := func(err error) BatchResult {
		status, msg, outcome := classify(err)
		_ = h.s.auditSign(r.Context(), rec, outcome, msg)
		h.s.metrics.observe("seal", rec.level, outcome, time.Since(start))
		res.Status, res.Problem = status, &problem.Details{Status: status, Title: http.StatusText(status), Detail: msg}
		return res
	}
	if readErr != nil {
		return failed(readErr)
	}
	rec.size = in.size
	var buf bytes.Buffer
	var digest []byte
	_, err := h.s.signPDF(r.Context(), rec, cred, level, in, func(d []byte, size int64) (io.Writer, error) {
		digest = d
		buf.Grow(int(size))
		return &buf, nil
	}, nil, nil)
	if err != nil {
		return failed(err)
	}
	h.s.metrics.observe("seal", rec.level, audit.OutcomeSuccess, time.Since(start))
	res.Status, res.DocumentDigest, res.Document = http.StatusOK, hex.EncodeToString(digest), base64.StdEncoding.EncodeToString(buf.Bytes())
	return res
}

// PINRequest is the body of POST /api/v1/credentials/{id}/pin.
type PINRequest struct {
	PIN string `json:"pin"`
}

// setPIN serves POST /api/v1/credentials/{id}/pin: the citizen owning the
// credential sets its signing PIN, once (409 when already set).
func (h *signingHTTP) setPIN(w http.ResponseWriter, r *http.Request) {
	start := time.Now()
	owner := citizenOf(r)
	id := r.PathValue("id")
	rec := signRecord{action: actionPINSet, actor: owner, credential: id, level: "none"}
	fail := func(err error) {
		status, msg, outcome := classify(err)
		if errors.Is(err, pin.ErrAlreadySet) {
			status, msg = http.StatusConflict, "the signing PIN of this credential is already set"
		}
		_ = h.s.auditSign(r.Context(), rec, outcome, msg)
		problem.Write(w, problem.Details{Status: status, Detail: msg, Instance: r.URL.Path})
	}
	if _, err := h.s.credential(r.Context(), id, store.OwnerCitizen, owner); err != nil {
		fail(err)
		return
	}
	var req PINRequest
	if err := decodeJSONBody(w, r, &req); err != nil {
		fail(err)
		return
	}
	if err := h.s.pins.Set(r.Context(), id, req.PIN); err != nil {
		fail(err)
		return
	}
	if err := h.s.auditSign(r.Context(), rec, audit.OutcomeSuccess, ""); err != nil {
		fail(fmt.Errorf("%w: %v", errAudit, err))
		return
	}
	_ = start
	writeJSON(w, http.StatusCreated, map[string]string{"credentialID": id, "pin": "set"})
}

// decodeJSONBody decodes a small JSON body (unknown members are ignored, as
// the CSC API asks of servers).
func decodeJSONBody(w http.ResponseWriter, r *http.Request, v any) error {
	if mt, _, err := mime.ParseMediaType(r.Header.Get("Content-Type")); err != nil || mt != "application/json" {
		return refuse(http.StatusUnsupportedMediaType, "the body must be application/json")
	}
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, 1<<20))
	if err := dec.Decode(v); err != nil {
		return refuse(http.StatusBadRequest, "invalid JSON body: %v", err)
	}
	return nil
}
