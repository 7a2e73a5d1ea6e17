package signer

import (
	"bytes"
	"context"
	"crypto"
	"crypto/rand"
	"crypto/x509"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"slices"
	"strconv"
	"time"

	"github.com/thiqa/thiqa/signer/cades"
	"github.com/thiqa/thiqa/signer/pdfdoc"
)

// Options describe one signature.
type Options struct {
	// Level is the PAdES baseline level (default B-B).
	Level Level
	// Signer is the signing key (an HSM key in production).
	Signer crypto.Signer
	// Chain is the signer's certificate first, then its issuers.
	Chain []*x509.Certificate
	// Hash is the digest algorithm (default: SHA-256, SHA-384 for P-384).
	Hash crypto.Hash
	// PSS signs with RSASSA-PSS when the key is RSA.
	PSS bool
	// Time is the claimed signing time written to /M (default: now).
	Time time.Time
	// Reason, Location, Name and ContactInfo fill the signature dictionary.
	Reason, Location, Name, ContactInfo string
	// FieldName names the signature field (default "SignatureN").
	FieldName string
	// Page is the 0-based page the signature widget belongs to.
	Page int
	// DocMDP, when 1, 2 or 3, makes this a certification signature with
	// that permission level; 0 makes an approval signature.
	DocMDP int
	// Appearance, when set, makes the signature visible.
	Appearance *Appearance
	// Validation supplies time-stamps and revocation data.
	Validation ValidationOptions
	// Rand is the randomness source for the signature (default crypto/rand).
	Rand io.Reader
	// BeforeSign, when set, is called once the document is prepared and
	// before the key is used, with the ByteRange digest of the document and
	// the digest the key will sign (the hash of the CMS signed attributes,
	// the "DTBS/R" of the CSC API). Returning an error aborts signing and
	// nothing is written: the seam for sole-control authorisation (SAD
	// bound to the hash) and for recording the intent before signing.
	BeforeSign func(ctx context.Context, documentDigest, dtbs []byte) error
	// Placeholder, when positive, is the exact size in bytes of the
	// /Contents placeholder: the document's layout, hence its ByteRange
	// digest and the signed attributes, is then fixed by the input, Time
	// and the other options alone (a signature prepared in one call and
	// completed in another), and a signature that does not fit is an error
	// rather than made again larger. Zero sizes it automatically.
	Placeholder int
	// OnWarnings, when set, is called once, before the key is used, with
	// what the appearance cannot show as asked (Result.Warnings).
	OnWarnings func(warnings []string)
	// BeforeWrite, when set, is called once every step succeeded and
	// before the first byte goes to out, with the size of the signed PDF.
	// Returning an error aborts and nothing is written: the seam for a
	// record that must exist before the answer, and for a Content-Length.
	BeforeWrite func(size int64) error
}

func (o *Options) check() error {
	if o.Level == 0 {
		o.Level = LevelBB
	}
	if o.Level < LevelBB || o.Level > LevelBLTA {
		return fmt.Errorf("%w: level %v", ErrOptions, o.Level)
	}
	if o.Signer == nil || len(o.Chain) == 0 || o.Chain[0] == nil {
		return fmt.Errorf("%w: a signer and its certificate are required", ErrOptions)
	}
	if o.DocMDP < 0 || o.DocMDP > 3 {
		return fmt.Errorf("%w: DocMDP permission %d", ErrOptions, o.DocMDP)
	}
	if o.Level >= LevelBT && o.Validation.TSA == nil {
		return fmt.Errorf("%w: level %v needs a time-stamp authority", ErrOptions, o.Level)
	}
	if o.Level >= LevelBLT && o.Validation.Revocation == nil {
		return fmt.Errorf("%w: level %v needs a revocation source", ErrOptions, o.Level)
	}
	if o.Hash == 0 {
		o.Hash = cades.DefaultHash(o.Signer.Public())
	}
	if _, err := cades.DigestAlgorithm(o.Hash); err != nil {
		return fmt.Errorf("%w: %v", ErrOptions, err)
	}
	if o.Time.IsZero() {
		o.Time = time.Now()
	}
	if o.Rand == nil {
		o.Rand = rand.Reader
	}
	return nil
}

// Result describes a signature that was made, for the audit record.
type Result struct {
	// Level is the level produced.
	Level Level
	// Hash is the digest algorithm of the signature.
	Hash crypto.Hash
	// DocumentDigest is the digest of the signature's ByteRange.
	DocumentDigest []byte
	// CMS is the DER signature (CAdES SignedData) placed in /Contents.
	CMS []byte
	// SigningTime is the time written to /M.
	SigningTime time.Time
	// Size is the size of the signed PDF written to out.
	Size int64
	// Warnings say what the appearance could not show as asked (characters
	// drawn with a fallback font, or with none).
	Warnings []string
}

// SignBytes signs the PDF in doc and returns the signed PDF.
func SignBytes(ctx context.Context, doc []byte, opts Options) ([]byte, error) {
	var out bytes.Buffer
	if _, err := Sign(ctx, Bytes(doc), int64(len(doc)), &out, opts); err != nil {
		return nil, err
	}
	return out.Bytes(), nil
}

// Sign signs the PDF of size inSize read from in and writes the signed PDF
// (the original bytes followed by one incremental update per step of the
// level) to out. Nothing is written to out unless every step succeeded.
func Sign(ctx context.Context, in io.ReaderAt, inSize int64, out io.Writer, opts Options) (*Result, error) {
	if err := opts.check(); err != nil {
		return nil, err
	}
	doc := &document{base: in, baseSize: inSize}
	rd, err := doc.open()
	if err != nil {
		return nil, err
	}
	if err := checkPermissions(rd, opts.DocMDP != 0); err != nil {
		return nil, err
	}
	res := &Result{Level: opts.Level, Hash: opts.Hash, SigningTime: opts.Time}
	var ap *drawing
	if opts.Appearance != nil {
		if ap, err = prepareAppearance(rd, &opts); err != nil {
			return nil, err
		}
		res.Warnings = ap.warnings
		if opts.OnWarnings != nil && len(ap.warnings) > 0 {
			opts.OnWarnings(ap.warnings)
		}
	}
	build := func(placeholder int) (*revision, error) {
		return addSignatureRevision(rd, &opts, ap, placeholder)
	}
	fill := func(digest []byte) ([]byte, error) {
		co := cades.Options{Hash: opts.Hash, PSS: opts.PSS}
		if opts.BeforeSign != nil {
			co.BeforeSign = func(dtbs []byte) error { return opts.BeforeSign(ctx, digest, dtbs) }
		}
		sig, err := cades.Sign(opts.Rand, digest, opts.Signer, opts.Chain, co)
		if err != nil {
			return nil, mapErr("signing", err)
		}
		if opts.Level >= LevelBT {
			h := opts.Validation.tsHash()
			tctx, cancel := opts.Validation.callContext(ctx)
			tok, err := opts.Validation.TSA.Timestamp(tctx, sig.TimestampImprint(h), h)
			cancel()
			if err != nil {
				return nil, fmt.Errorf("%w: signature time-stamp: %w", ErrTimestamp, err)
			}
			if err := sig.AddTimestamp(tok); err != nil {
				return nil, fmt.Errorf("%w: %v", ErrTimestamp, err)
			}
		}
		der, err := sig.Marshal()
		res.DocumentDigest, res.CMS = digest, der
		return der, err
	}
	est := MaxPlaceholder(opts.Chain, opts.Level)
	// A signature of the same key, hash and level is the size of the
	// last ones give or take a few bytes: a placeholder that size, not the
	// worst case, keeps the output small.
	// Under sole control (BeforeSign set) one authorisation allows one
	// signature: the worst-case placeholder, and no second attempt that
	// would ask for the authorisation and the key again.
	sizeKey := placeholderKey(opts.Chain[0], opts.Hash, opts.Level >= LevelBT, opts.PSS)
	retry := opts.BeforeSign == nil
	if n, ok := opts.Validation.Cache.placeholder(sizeKey); ok && retry {
		est = n
	}
	if opts.Placeholder > 0 {
		est, retry = opts.Placeholder, false
	}
	der, hexLen, err := doc.appendSigned(est, retry, opts.Hash, build, fill)
	if err != nil {
		return nil, err
	}
	opts.Validation.Cache.observeSignature(sizeKey, len(der))
	if opts.Level >= LevelBLT {
		if err := doc.addDSS(ctx, opts.Validation, [][]byte{paddedContents(der, hexLen)}, opts.Chain); err != nil {
			return nil, err
		}
	}
	if opts.Level >= LevelBLTA {
		if err := doc.addDocTimestamp(ctx, opts.Validation); err != nil {
			return nil, err
		}
	}
	res.Size = doc.size()
	if opts.BeforeWrite != nil {
		if err := opts.BeforeWrite(res.Size); err != nil {
			return nil, err
		}
	}
	if err := doc.writeTo(out); err != nil {
		return nil, err
	}
	return res, nil
}

// MaxPlaceholder returns a /Contents size that fits any signature with
// chain at level (the placeholder used before a key's signature sizes are
// known), for Options.Placeholder.
func MaxPlaceholder(chain []*x509.Certificate, level Level) int {
	n := 4096
	for _, c := range chain {
		if c != nil {
			n += len(c.Raw)
		}
	}
	if level >= LevelBT {
		n += 12288
	}
	return n
}

// document is a PDF plus the incremental updates made so far, in memory.
type document struct {
	base     io.ReaderAt
	baseSize int64
	tail     []byte
	buf      []byte // for streaming a base that is not Bytes
}

// buffer returns the document's copy buffer.
func (d *document) buffer() []byte {
	if d.buf == nil {
		d.buf = make([]byte, 32<<10)
	}
	return d.buf
}

// Bytes is a PDF held in memory, as an io.ReaderAt. Sign hashes and writes
// it from the slice itself, without copying it through a buffer.
type Bytes []byte

// Slice lends up to n bytes from off (pdfdoc.Slicer): the PDF reader
// parses them in place.
func (b Bytes) Slice(off int64, n int) []byte {
	if off < 0 || off >= int64(len(b)) || n <= 0 {
		return nil
	}
	return b[off:min(int64(len(b)), off+int64(n))]
}

// ReadAt implements io.ReaderAt.
func (b Bytes) ReadAt(p []byte, off int64) (int, error) {
	if off < 0 {
		return 0, errors.New("signer: negative offset")
	}
	if off >= int64(len(b)) {
		return 0, io.EOF
	}
	n := copy(p, b[off:])
	if n < len(p) {
		return n, io.EOF
	}
	return n, nil
}

func (d *document) size() int64 { return d.baseSize + int64(len(d.tail)) }

func (d *document) reader() io.ReaderAt {
	return &pdfdoc.Concat{Base: d.base, BaseSize: d.baseSize, Tail: d.tail}
}

func (d *document) open() (*pdfdoc.Reader, error) {
	rd, err := pdfdoc.Open(d.reader(), d.size())
	if err != nil {
		return nil, mapErr("reading the PDF", err)
	}
	return rd, nil
}

func (d *document) writeTo(out io.Writer) error {
	if b, ok := d.base.(Bytes); ok && int64(len(b)) == d.baseSize {
		if _, err := out.Write(b); err != nil {
			return fmt.Errorf("signer: writing the output: %w", err)
		}
	} else if _, err := io.CopyBuffer(out, io.NewSectionReader(d.base, 0, d.baseSize), d.buffer()); err != nil {
		return fmt.Errorf("signer: writing the output: %w", err)
	}
	if _, err := out.Write(d.tail); err != nil {
		return fmt.Errorf("signer: writing the output: %w", err)
	}
	return nil
}

// revision is an incremental update holding a signature dictionary whose
// /ByteRange and /Contents are still placeholders.
type revision struct {
	data      []byte
	byteRange int // offset in data of the /ByteRange placeholder
	contents  int // offset in data of the '<' of /Contents
	hexLen    int // number of hex digits between < and >
}

const byteRangeWidth = 60

// appendSigDict appends the signature dictionary head followed by the
// ByteRange and Contents placeholders to b, and says where the
// placeholders lie relative to len(b) on entry.
func appendSigDict(b, head []byte, placeholder int) (out []byte, brAt, contentsAt int) {
	const br, ct = " /ByteRange ", " /Contents <"
	start := len(b)
	b = append(append(b, head...), br...)
	brAt = len(b) - start
	b = appendRepeat(b, ' ', byteRangeWidth)
	b = append(b, ct...)
	contentsAt = len(b) - start - 1
	b = appendRepeat(b, '0', 2*placeholder)
	b = append(b, ">>>"...)
	return b, brAt, contentsAt
}

// sigDictSize is the size of what appendSigDict appends.
func sigDictSize(head []byte, placeholder int) int {
	return len(head) + len(" /ByteRange ") + byteRangeWidth + len(" /Contents <") + 2*placeholder + len(">>>")
}

// appendRepeat appends n copies of c to b.
func appendRepeat(b []byte, c byte, n int) []byte {
	start := len(b)
	b = slices.Grow(b, n)[:start+n]
	fill := b[start:]
	if n > 0 {
		fill[0] = c
		for i := 1; i < n; i *= 2 {
			copy(fill[i:], fill[:i])
		}
	}
	return b
}

// appendSigned adds a revision built by build, hashes its byte ranges and
// fills /Contents with what fill returns, retrying once with a larger
// placeholder when the signature does not fit. It returns the DER and the
// number of hex digits of the /Contents string.
func (d *document) appendSigned(est int, retry bool, h crypto.Hash, build func(int) (*revision, error), fill func([]byte) ([]byte, error)) ([]byte, int, error) {
	for attempt := 0; attempt < 2; attempt++ {
		rev, err := build(est)
		if err != nil {
			return nil, 0, err
		}
		start := d.size()
		total := start + int64(len(rev.data))
		c0 := start + int64(rev.contents)
		c1 := c0 + int64(rev.hexLen) + 2
		br := fmt.Sprintf("[0 %d %d %d]", c0, c1, total-c1)
		if len(br) > byteRangeWidth {
			return nil, 0, fmt.Errorf("signer: byte range too wide")
		}
		copy(rev.data[rev.byteRange:], br)
		digest, err := d.hashRanges(h, rev.data, c0-start, c1-start)
		if err != nil {
			return nil, 0, err
		}
		der, err := fill(digest)
		if err != nil {
			return nil, 0, err
		}
		if 2*len(der) > rev.hexLen {
			if !retry {
				return nil, 0, fmt.Errorf("%w: the signature (%d bytes) does not fit the fixed placeholder (%d bytes)", ErrOptions, len(der), rev.hexLen/2)
			}
			est = len(der) + 2048
			continue
		}
		hex.Encode(rev.data[rev.contents+1:], der)
		if len(d.tail) == 0 {
			d.tail = rev.data
		} else {
			d.tail = append(d.tail, rev.data...)
		}
		return der, rev.hexLen, nil
	}
	return nil, 0, fmt.Errorf("signer: signature does not fit its placeholder")
}

// paddedContents returns the bytes of a /Contents string of hexLen digits
// holding der: der followed by zeros.
func paddedContents(der []byte, hexLen int) []byte {
	b := make([]byte, max(hexLen/2, len(der)))
	copy(b, der)
	return b
}

// hashRanges digests the current document followed by rev, leaving out
// rev[gap0:gap1], by streaming.
func (d *document) hashRanges(h crypto.Hash, rev []byte, gap0, gap1 int64) ([]byte, error) {
	hh := h.New()
	if b, ok := d.base.(Bytes); ok && int64(len(b)) == d.baseSize {
		hh.Write(b)
		hh.Write(d.tail)
	} else if _, err := io.CopyBuffer(hh, io.NewSectionReader(d.reader(), 0, d.size()), d.buffer()); err != nil {
		return nil, fmt.Errorf("signer: hashing the document: %w", err)
	}
	hh.Write(rev[:gap0])
	hh.Write(rev[gap1:])
	return hh.Sum(nil), nil
}

// pdfDate formats t as a PDF date string.
func pdfDate(t time.Time) string {
	_, off := t.Zone()
	s := t.Format("D:20060102150405")
	if off == 0 {
		return s + "Z"
	}
	sign := byte('+')
	if off < 0 {
		sign, off = '-', -off
	}
	return s + string(sign) + fmt.Sprintf("%02d'%02d'", off/3600, off%3600/60)
}

// textString encodes s as a PDF text string (PDFDocEncoding when ASCII,
// UTF-16BE with BOM otherwise).
func textString(s string) pdfdoc.Object {
	ascii := true
	for i := 0; i < len(s); i++ {
		if s[i] >= 0x80 {
			ascii = false
			break
		}
	}
	if ascii {
		return pdfdoc.String(s)
	}
	b := []byte{0xfe, 0xff}
	for _, r := range s {
		if r > 0xffff {
			r1, r2 := 0xd800+((r-0x10000)>>10), 0xdc00+((r-0x10000)&0x3ff)
			b = append(b, byte(r1>>8), byte(r1), byte(r2>>8), byte(r2))
			continue
		}
		b = append(b, byte(r>>8), byte(r))
	}
	return pdfdoc.HexString(b)
}

func itoa(i int) string { return strconv.Itoa(i) }
