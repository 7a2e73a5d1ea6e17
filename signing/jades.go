package signing

import (
	"crypto"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"io"
	"mime"
	"net/http"
	"strconv"
	"time"

	"github.com/thiqa/thiqa/internal/audit"
	"github.com/thiqa/thiqa/signer"
	"github.com/thiqa/thiqa/signer/jades"
)

// maxJSONDocument bounds the JSON document of a JAdES seal.
const maxJSONDocument = 8 << 20

// sealJAdES serves POST /api/v1/seal/jades?level=B-B|B-T&credential=ID
// [&format=compact][&detached=1][&alg=RS256|PS256]: the body is a JSON
// document (application/json), the answer its JAdES seal (ETSI TS 119
// 182-1): the flattened JWS JSON serialization (application/jose+json) or
// the compact one (application/jose), the payload attached or detached.
func (s *Service) sealJAdES(w http.ResponseWriter, r *http.Request) {
	start := time.Now()
	rec := signRecord{action: ActionSeal, actor: agencyOf(r), level: "unknown", name: "jades"}
	q := r.URL.Query()
	level, cred, ok := s.callerCredential(w, r, q, &rec, "seal-jades", OwnerAgency, start)
	if !ok {
		return
	}
	fail := func(err error) { s.fail(w, r, rec, "seal-jades", start, err) }
	if level != signer.LevelBB && level != signer.LevelBT {
		fail(Refuse(ErrBadRequest, "a JAdES seal is B-B or B-T, not %s", level))
		return
	}
	o := jades.Options{Level: jades.Level(level.String()), Signer: cred.key, Chain: cred.chain, Algorithm: q.Get("alg"),
		Time: s.now(), TSA: s.validation.TSA, Timeout: s.cfg.Timeout}
	switch q.Get("format") {
	case "", "json":
	case "compact":
		o.Compact = true
	default:
		fail(Refuse(ErrBadRequest, "format must be json or compact, got %q", q.Get("format")))
		return
	}
	if d := q.Get("detached"); d != "" {
		v, err := strconv.ParseBool(d)
		if err != nil {
			fail(Refuse(ErrBadRequest, "detached must be 1 or 0, got %q", d))
			return
		}
		o.Detached = v
	}
	if mt, _, err := mime.ParseMediaType(r.Header.Get("Content-Type")); err != nil || mt != "application/json" {
		fail(Refuse(ErrUnsupportedMediaType, "the body must be a JSON document sent as application/json"))
		return
	}
	if r.ContentLength > maxJSONDocument {
		fail(Refuse(ErrTooLarge, "the document exceeds %d bytes", maxJSONDocument))
		return
	}
	payload, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxJSONDocument))
	if err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			fail(Refuse(ErrTooLarge, "the document exceeds %d bytes", maxJSONDocument))
		} else {
			fail(Refuse(ErrBadRequest, "reading the document: %v", err))
		}
		return
	}
	rec.size = int64(len(payload))
	digest := sha256.Sum256(payload)
	rec.documentDigest, rec.hash = digest[:], crypto.SHA256
	res, err := jades.Sign(r.Context(), payload, o)
	if err != nil {
		fail(err)
		return
	}
	if err := s.auditSign(r.Context(), rec, audit.OutcomeSuccess, ""); err != nil {
		fail(auditFailed(err))
		return
	}
	ctype := "application/jose+json"
	if o.Compact {
		ctype = "application/jose"
	}
	hdr := w.Header()
	hdr.Set("Content-Type", ctype)
	hdr.Set(DigestHeader, hex.EncodeToString(digest[:]))
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write(res.JWS)
	s.Observe("seal-jades", rec.level, audit.OutcomeSuccess, time.Since(start))
}
