package verify

import (
	"crypto"
	"fmt"
	"io"
	"sync"

	"github.com/thiqa/thiqa/verify/pdf"
)

// coverage is the outcome of the ByteRange checks.
type coverage struct {
	ok       bool   // standard coverage of a whole revision
	revision int    // revision signed (-1 if none)
	problem  string // why the coverage is not standard
	fatal    bool   // a FORMAT_FAILURE (overlap, gap not the /Contents, bytes outside the file)
}

// checkCoverage checks that the ByteRange covers exactly one revision of the
// file except the /Contents hex string.
func checkCoverage(f *pdf.File, s *pdf.SigField) coverage {
	br := s.ByteRange
	c := coverage{revision: -1}
	if len(br) != 4 {
		c.problem, c.fatal = fmt.Sprintf("ByteRange has %d numbers, not 4", len(br)), true
		return c
	}
	for _, v := range br {
		if v < 0 || v > f.Size() {
			c.problem, c.fatal = "ByteRange outside the file", true
			return c
		}
	}
	if br[0] != 0 {
		c.problem, c.fatal = "ByteRange does not start at 0", true
		return c
	}
	end1, start2, end2 := br[0]+br[1], br[2], br[2]+br[3]
	if end2 > f.Size() {
		c.problem, c.fatal = "ByteRange extends beyond the file", true
		return c
	}
	if start2 < end1 {
		c.problem, c.fatal = "ByteRange parts overlap", true
		return c
	}
	if s.InObjectStream {
		c.problem, c.fatal = "signature dictionary inside an object stream", true
		return c
	}
	if end1 != s.Contents.Start || start2 != s.Contents.End || !s.Contents.Hex {
		c.problem, c.fatal = "the gap in the ByteRange is not exactly the /Contents hex string", true
		return c
	}
	rev := f.RevisionEndingAt(end2)
	if rev < 0 {
		c.problem = "ByteRange does not end at the end of a revision"
		c.fatal = true
		return c
	}
	if s.DefinedIn > rev {
		c.problem, c.fatal = "signature dictionary defined outside the revision it signs", true
		return c
	}
	c.ok, c.revision = true, rev
	return c
}

// hashBufSize is the size of the buffers the ByteRange is streamed through.
const hashBufSize = 64 << 10

// hashRanges streams the ByteRange bytes through h, reading into a buffer
// from bufs (a Verifier's pool). When prefixes is not nil a first range
// starting at 0 resumes from the longest prefix of the file already hashed
// with h, and leaves states along the way and at its end for the next
// signatures; every byte read counts against the document's budget (an
// error wrapping errHashBudget once it is spent).
func hashRanges(r io.ReaderAt, br []int64, h crypto.Hash, bufs *sync.Pool, prefixes *prefixHashes) ([]byte, error) {
	d := h.New()
	bp, _ := bufs.Get().(*[]byte)
	if bp == nil {
		b := make([]byte, hashBufSize)
		bp = &b
	}
	defer bufs.Put(bp)
	buf := *bp
	for i := 0; i+1 < len(br); i += 2 {
		off, n := br[i], br[i+1]
		shared := i == 0 && off == 0 && n > 0 && prefixes != nil
		step := int64(0)
		if shared {
			done := prefixes.resume(h, d, n)
			off, n = done, n-done
			step = prefixes.step
		}
		for n > 0 {
			k := int64(len(buf))
			if n < k {
				k = n
			}
			if step > 0 {
				// Stop at the next checkpoint and leave the state there,
				// so that a shorter range hashed later resumes close by.
				k = min(k, step-off%step)
			}
			if prefixes != nil {
				if err := prefixes.spend(k); err != nil {
					return nil, err
				}
			}
			m, err := r.ReadAt(buf[:k], off)
			if int64(m) < k {
				if err == nil {
					err = io.ErrUnexpectedEOF
				}
				return nil, fmt.Errorf("reading signed bytes: %w", err)
			}
			d.Write(buf[:k])
			off += k
			n -= k
			if step > 0 && n > 0 && off%step == 0 {
				prefixes.save(h, d, off)
			}
		}
		if shared {
			prefixes.save(h, d, off)
		}
	}
	return d.Sum(nil), nil
}
