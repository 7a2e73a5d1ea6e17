// Package verify validates signed PDFs for relying parties: each signature
// and document timestamp is checked for PDF structure (ByteRange coverage,
// changes after signing), CMS integrity, certificate path, revocation and
// timestamps, and receives an ETSI EN 319 102-1 verdict. It imports no
// signing code: a verifier must never trust what the signer believes.
package verify

import (
	"bytes"
	"context"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/thiqa/thiqa/verify/path"
	"github.com/thiqa/thiqa/verify/pdf"
	"github.com/thiqa/thiqa/verify/report"
)

// Options configure a Verifier.
type Options struct {
	// TrustAnchors are the trusted root (or other anchor) certificates.
	TrustAnchors []*x509.Certificate
	// At is the validation time; zero means now.
	At time.Time
	// Fetcher fetches revocation information online when AllowOnline.
	Fetcher     RevocationFetcher
	AllowOnline bool
	// FetchTimeout bounds each online fetch (default 10 s).
	FetchTimeout time.Duration
	// MaxFetchesPerDocument bounds the online requests one document's
	// validation may send (default 24; cached values are free), all within
	// 4 times FetchTimeout. Past either bound,
	// certificates without other revocation information are INDETERMINATE
	// / TRY_LATER, with a warning.
	MaxFetchesPerDocument int
	// Public marks a verifier that serves anonymous callers (`thiqa
	// serve`): NewOnline's fetcher connects to public addresses only, and
	// to FetchAllowHosts (GuardedClient), and reports say that an online
	// check could not be done, never the location or the network error
	// behind it (those go to Logger).
	Public bool
	// FetchAllowHosts are the host:port entries (ParseFetchHost) a Public
	// verifier may fetch from whatever address they resolve to: this
	// deployment's own publicBaseURL host and configured ones.
	FetchAllowHosts []string
	// Revocation decides what missing revocation information means.
	Revocation RevocationPolicy
	// Algorithms are the accepted algorithms (default: path.DefaultAlgorithms).
	Algorithms *path.AlgorithmPolicy
	// MaxFileSize refuses larger files (default 512 MiB).
	MaxFileSize int64
	// Logger receives debug logs (default: discard).
	Logger *slog.Logger
	// TrustedLists, when set, add the listed services' certificates as
	// trust anchors and decide the qualified status (ETSI TS 119 615);
	// without them no signature is reported qualified.
	TrustedLists TrustedLists
}

// Verifier validates signed PDFs. It is safe for concurrent use.
type Verifier struct {
	opts Options
	log  *slog.Logger
	// ocsp remembers parsed, signature-checked OCSP responses across documents.
	ocsp *ocspMemo
	// certs remembers parsed certificates across documents.
	certs *path.CertificateCache
	// bufs holds the buffers signed bytes are hashed through.
	bufs sync.Pool
	// bodies holds the buffers Handler reads request bodies into.
	bodies sync.Pool
	// anchors indexes TrustAnchors once for every path built.
	anchors *path.AnchorIndex
}

// signatureCacheSize bounds how many verified signatures (CA certificates,
// CRLs, OCSP responses) a Verifier remembers.
const signatureCacheSize = 16384

// certificateCacheSize bounds how many parsed certificates a Verifier
// remembers (a few KiB each; the cache also bounds their bytes).
const certificateCacheSize = 1024

// ErrTooLarge is returned for files above Options.MaxFileSize.
var ErrTooLarge = errors.New("verify: file too large")

// New returns a Verifier.
func New(o Options) *Verifier {
	if o.Algorithms == nil {
		a := path.DefaultAlgorithms()
		o.Algorithms = &a
	}
	if o.Algorithms.Cache == nil {
		a := *o.Algorithms
		a.Cache = path.NewSignatureCache(signatureCacheSize)
		o.Algorithms = &a
	}
	if o.MaxFileSize <= 0 {
		o.MaxFileSize = 512 << 20
	}
	log := o.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Verifier{opts: o, log: log, ocsp: &ocspMemo{}, certs: path.NewCertificateCache(certificateCacheSize),
		anchors: path.NewAnchorIndex(o.TrustAnchors)}
}

// defaultMaxFetchesPerDocument is Options.MaxFetchesPerDocument's default.
const defaultMaxFetchesPerDocument = 24

// fetchContext returns ctx carrying the online fetch budget of one document.
func (v *Verifier) fetchContext(ctx context.Context) context.Context {
	n := v.opts.MaxFetchesPerDocument
	if n <= 0 {
		n = defaultMaxFetchesPerDocument
	}
	timeout := v.opts.FetchTimeout
	if timeout <= 0 {
		timeout = 10 * time.Second
	}
	return withFetchBudget(ctx, n, 4*timeout)
}

// NoAnchorWarning is the report warning of a verifier without trust
// anchors: integrity and structure are still checked (a broken document is
// TOTAL-FAILED), but no certificate path can end at a trusted anchor, so an
// intact signature is at best INDETERMINATE / NO_CERTIFICATE_CHAIN_FOUND.
const NoAnchorWarning = "no trust anchor is configured: signatures are checked for integrity only, " +
	"and no certificate path can be trusted (INDETERMINATE / NO_CERTIFICATE_CHAIN_FOUND at best)"

// hasAnchors reports whether anything can anchor a certificate path: the
// configured trust anchors or the services of trusted lists.
func (v *Verifier) hasAnchors() bool {
	return len(v.opts.TrustAnchors) > 0 || v.opts.TrustedLists != nil
}

func (v *Verifier) now() time.Time {
	if v.opts.At.IsZero() {
		return time.Now().UTC()
	}
	return v.opts.At.UTC()
}

// docContext carries what all signatures of one document share.
type docContext struct {
	ctx     context.Context
	f       *pdf.File
	r       io.ReaderAt
	at      time.Time
	dssCert []*x509.Certificate
	dssCRL  [][]byte
	dssOCSP [][]byte
	hasDSS  bool
	dssRev  int // revision that added or last changed the DSS (-1 none)
	// lastUsedRevocation is set by verifySignature: embedded revocation
	// values were used for the signer's path.
	lastUsedRevocation bool
	undecodable        bool
	tsaCerts           []tsaCert
	memo               *ocspMemo
	certs              *path.CertificateCache
	bufs               *sync.Pool
	crls               crlMemo
	usedRevocation     []bool
	// diffSeen counts the changed objects checkModifications compared,
	// over all the signatures (bounded by maxDiffObjectsPerDocument).
	diffSeen int
	// prefixes keeps the hash of the file's first bytes between signatures.
	prefixes prefixHashes
}

type tsaCert struct {
	cert *x509.Certificate
	pool []*x509.Certificate
}

// VerifyPDF validates every signature and document timestamp of the PDF.
// The error is non-nil only when validation could not run at all (the
// file is unreadable or too large); a damaged PDF gets a report.
func (v *Verifier) VerifyPDF(ctx context.Context, r io.ReaderAt, size int64) (*report.Report, error) {
	if size > v.opts.MaxFileSize {
		return nil, fmt.Errorf("%w: %d bytes", ErrTooLarge, size)
	}
	if size < 0 {
		return nil, fmt.Errorf("verify: negative size %d", size)
	}
	at := v.now()
	rep := &report.Report{ValidationTime: at, DocumentSize: size, Signatures: []report.Signature{}}
	if !v.hasAnchors() {
		rep.Warnings = append(rep.Warnings, NoAnchorWarning)
	}
	if reason, err := checkHeader(r, size); err != nil {
		return nil, err
	} else if reason != nil {
		return notParsed(rep, reason), nil
	}
	f, err := pdf.Open(r, size)
	if err != nil {
		return notParsed(rep, fmt.Errorf("the PDF cannot be read: %w", err)), nil
	}
	rep.Revisions = len(f.Sections)
	if f.Repaired {
		rep.Warnings = append(rep.Warnings, "the cross-reference table is damaged; objects were located by scanning")
	}
	if _, err := f.Catalog(-1); err != nil {
		return notParsed(rep, fmt.Errorf("the document catalog cannot be read: %w", err)), nil
	}
	sigs, fieldsErr := f.Signatures(-1)
	if errors.Is(fieldsErr, pdf.ErrTooManySignatures) {
		return notParsed(rep, fmt.Errorf("the signature fields cannot be read: %w", fieldsErr)), nil
	}
	// Signatures that a later revision removed from the form are still
	// validated (and fail for the removal) rather than silently dropped.
	removed, err := removedSignatures(f, sigs)
	if err != nil {
		return notParsed(rep, err), nil
	}
	sigs = append(sigs, removed...)
	if len(sigs) > pdf.MaxSignatures {
		return notParsed(rep, fmt.Errorf("%w: more than %d signatures, counting those later revisions removed", pdf.ErrTooManySignatures, pdf.MaxSignatures)), nil
	}
	sort.SliceStable(sigs, func(i, j int) bool { return first(sigs[i].ByteRange) < first(sigs[j].ByteRange) })
	dc := &docContext{ctx: v.fetchContext(ctx), f: f, r: r, at: at, dssRev: -1, memo: v.ocsp, certs: v.certs, bufs: &v.bufs, crls: crlMemo{},
		prefixes: newPrefixHashes(f.Size())}
	dc.loadDSS()
	// Document timestamps first, newest first: each one is a proof of
	// existence for everything it covers, including older timestamps whose
	// TSA certificates have expired since (B-LTA).
	results := make([]report.Signature, len(sigs))
	used := make([]bool, len(sigs))
	skip := make([]bool, len(sigs))
	isDocTS := func(s *pdf.SigField) bool { return s.Type() == "DocTimeStamp" || s.SubFilter() == "ETSI.RFC3161" }
	poeAfter := func(rev int) time.Time {
		var poe time.Time
		for i, s := range sigs {
			r := results[i]
			if isDocTS(s) && r.Indication == report.TotalPassed && r.Revision > rev && r.ProvenSigningTime != nil &&
				(poe.IsZero() || r.ProvenSigningTime.Before(poe)) {
				poe = *r.ProvenSigningTime
			}
		}
		return poe
	}
	order := make([]int, 0, len(sigs))
	for i := len(sigs) - 1; i >= 0; i-- {
		if isDocTS(sigs[i]) {
			order = append(order, i)
		}
	}
	for i := range sigs {
		if !isDocTS(sigs[i]) {
			order = append(order, i)
		}
	}
	for _, i := range order {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		s := sigs[i]
		dc.lastUsedRevocation, dc.undecodable = false, false
		rev := -1
		if len(s.ByteRange) == 4 {
			rev = f.RevisionEndingAt(s.ByteRange[2] + s.ByteRange[3])
		}
		if isDocTS(s) {
			results[i] = v.verifyDocTimestamp(dc, s, poeAfter(rev))
		} else {
			results[i] = v.verifySignature(dc, s, poeAfter(rev))
		}
		used[i], skip[i] = dc.lastUsedRevocation, dc.undecodable
	}
	for i, s := range sigs {
		if skip[i] {
			rep.Errors = append(rep.Errors, fmt.Sprintf("signature field %q holds no decodable CMS signature: %s", s.Name, strings.Join(results[i].Errors, "; ")))
			continue
		}
		rep.Signatures = append(rep.Signatures, results[i])
		dc.usedRevocation = append(dc.usedRevocation, used[i])
	}
	v.applyLevels(dc, rep)
	rep.Finish()
	for _, s := range rep.Signatures {
		v.log.Debug("signature validated", "field", s.Field, "kind", s.Kind, "indication", s.Indication,
			"subIndication", s.SubIndication, "level", s.Level)
	}
	if f.Repaired && rep.Indication == report.TotalPassed {
		rep.Indication, rep.SubIndication = report.TotalFailed, report.FormatFailure
		rep.Errors = append(rep.Errors, "a damaged cross-reference table cannot be signed content")
	}
	if fieldsErr != nil {
		// A form whose field tree cannot be walked may hide signatures:
		// the document cannot be judged as a whole.
		rep.Indication, rep.SubIndication = report.TotalFailed, report.FormatFailure
		rep.Errors = append(rep.Errors, "the signature fields cannot be read: "+fieldsErr.Error())
	}
	return rep, nil
}

// headerWindow is how far into the file the %PDF- header may start (ISO
// 32000-2 Annex H tolerates leading bytes; readers look within 1024).
const headerWindow = 1024

// errNotPDF is the reason given for a body that is not a PDF at all.
var errNotPDF = errors.New("not a PDF: no %PDF- header in the first 1024 bytes")

// checkHeader tells a PDF from anything else (an empty file, HTML, a
// multipart body posted as if it were the PDF): reason says why the body
// is not a PDF; err is set only when the file cannot be read.
func checkHeader(r io.ReaderAt, size int64) (reason, err error) {
	if size == 0 {
		return errors.New("not a PDF: the file is empty"), nil
	}
	buf := make([]byte, min(size, headerWindow))
	n, err := r.ReadAt(buf, 0)
	if n < len(buf) && err != nil && !errors.Is(err, io.EOF) {
		return nil, fmt.Errorf("verify: reading the header: %w", err)
	}
	if !bytes.Contains(buf[:n], []byte("%PDF-")) {
		return errNotPDF, nil
	}
	return nil, nil
}

// notParsed makes rep the verdict on a body that is not a PDF or cannot be
// parsed: TOTAL-FAILED / FORMAT_FAILURE, whatever the path it came by.
func notParsed(rep *report.Report, err error) *report.Report {
	rep.Errors = append(rep.Errors, err.Error())
	rep.Indication, rep.SubIndication = report.TotalFailed, report.FormatFailure
	return rep
}

func first(br []int64) int64 {
	if len(br) >= 4 {
		return br[2] + br[3]
	}
	return 1 << 62
}

// loadDSS reads /DSS from the latest catalog.
func (dc *docContext) loadDSS() {
	cat, err := dc.f.Catalog(-1)
	if err != nil {
		return
	}
	dss := dc.f.Dict(cat["DSS"], -1)
	if dss == nil {
		return
	}
	dc.hasDSS = true
	if ref, ok := cat["DSS"].(pdf.Ref); ok {
		dc.dssRev = dc.f.DefinedIn(ref.Num, -1)
	} else if rr, ok := dc.f.RootRef(-1); ok {
		dc.dssRev = dc.f.DefinedIn(rr.Num, -1)
	}
	streams := func(key pdf.Name) [][]byte {
		arr, _ := dc.f.ResolveArray(dss[key], -1)
		var out [][]byte
		for i, o := range arr {
			if i >= 4096 {
				break
			}
			ro, err := dc.f.Resolve(o, -1)
			if err != nil {
				continue
			}
			if st, ok := ro.(*pdf.Stream); ok {
				if data, err := dc.f.Decode(st); err == nil {
					out = append(out, data)
				}
			}
		}
		return out
	}
	for _, der := range streams("Certs") {
		if c, err := dc.certs.Parse(der); err == nil {
			dc.dssCert = append(dc.dssCert, c)
		}
	}
	dc.dssCRL = streams("CRLs")
	dc.dssOCSP = streams("OCSPs")
}

// maxRevisionsScanned bounds the search for removed signatures.
const maxRevisionsScanned = 64

// maxFieldsScanned bounds the field dictionaries the search for removed
// signatures visits over all the revisions it reads: each revision's tree
// is walked anew, so one large tree shared by many revisions would
// otherwise be walked maxRevisionsScanned times.
const maxFieldsScanned = 1 << 18

// errTooManyFields refuses a document whose earlier revisions hold more
// form fields than the search for removed signatures reads.
var errTooManyFields = errors.New("too many form fields in earlier revisions to look for removed signatures")

// removedSignatures lists signature fields present in an earlier revision
// but not in the latest one. The error (wrapping pdf.ErrTooManySignatures
// or errTooManyFields) means the search was cut short and the document
// cannot be judged.
func removedSignatures(f *pdf.File, latest []*pdf.SigField) ([]*pdf.SigField, error) {
	key := func(s *pdf.SigField) string { return fmt.Sprint(s.ValueRef, s.Contents.Start, s.ByteRange) }
	seen := map[string]bool{}
	for _, s := range latest {
		seen[key(s)] = true
	}
	var out []*pdf.SigField
	first := len(f.Sections) - 1 - maxRevisionsScanned
	if first < 0 {
		first = 0
	}
	visited := 0
	for rev := len(f.Sections) - 2; rev >= first; rev-- {
		old, n, err := f.SignaturesVisited(rev)
		if errors.Is(err, pdf.ErrTooManySignatures) {
			return nil, fmt.Errorf("an earlier revision: %w", err)
		}
		if visited += n; visited > maxFieldsScanned {
			return nil, fmt.Errorf("%w (more than %d)", errTooManyFields, maxFieldsScanned)
		}
		for _, s := range old {
			if !seen[key(s)] {
				seen[key(s)] = true
				out = append(out, s)
			}
		}
		if len(latest)+len(out) > pdf.MaxSignatures {
			break // the caller refuses the document: no need to look further
		}
	}
	return out, nil
}
