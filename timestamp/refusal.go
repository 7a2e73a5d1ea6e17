package timestamp

import (
	"context"
	"encoding/json"
	"net/http"
	"time"
	"unicode/utf8"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/thiqa/thiqa/internal/clientip"
	"github.com/thiqa/thiqa/internal/ratelimit"
	"github.com/thiqa/thiqa/timestamp/tsp"
)

// Refused requests. Every refusal the TSA answers (each PKIStatus
// rejection, and the HTTP refusals of a request it cannot read: wrong
// method or media type, too large, a body that cannot be read) has an
// item in a timestamp.refuse record (ActionRefuse: collective records,
// actor thiqa-tsa, object the unit certificate's serial; outcome refused
// for a request the TSA will not serve, failure when it could not)
// before it is answered, within a budget: /tsa is public and hot, and the
// audit log is not its callers' to fill. The budget is EST's and CMP's: 10
// at once and one every 10 s per client address (clientip: the address a
// trusted proxy forwarded, every IPv6 address of a /64 one client); past
// it only the first refusal of each run of the address is recorded, with a
// note. Over all addresses together at most ratelimit.OverallBurst at once
// and ratelimit.OverallRate a second are recorded; past that none is, and
// the next recorded one says how many were not (unrecordedOverall). Every
// refusal is counted in thiqa_tsa_rejections_total either way, and those
// left unrecorded in thiqa_tsa_refusals_unrecorded_total{budget}. An item
// is
//
//	{"address":"192.0.2.7","failInfo":"badAlg","hashAlgorithm":"SHA-1",
//	 "requester":"addr:192.0.2.7","text":"hash algorithm … is not accepted"}
//
// with httpStatus instead of failInfo for an HTTP refusal, and reason and
// error while the issuing CA is revoked (RefuseReasonIssuerRevoked); never
// the request's bytes. A refusal whose record cannot be written is
// answered as an issued token's would be (systemFailure, HTTP 503 when the
// audit log is down for now; a 500 or 503 problem for an HTTP refusal);
// a systemFailure keeps its own answer.

// maxRefusalText bounds the text and hash algorithm of a refusal item (an
// OID the client chose may be long).
const maxRefusalText = 256

// refusalNote is the note of a recorded refusal past its address's budget.
const refusalNote = "further refusals of this address in a row are counted in thiqa_tsa_rejections_total, not recorded"

// Budget names of thiqa_tsa_refusals_unrecorded_total.
const (
	budgetAddress = "address"
	budgetOverall = "overall"
)

// refusalBudget bounds the recorded refusals of a TSA: per address and
// overall. A Service shares one among its units' Authorities.
type refusalBudget struct {
	budget *ratelimit.RefusalBudget
	// unrecorded counts the refusals left unrecorded, by the budget that
	// left each out; each Authority registers it with its metrics.
	unrecorded *prometheus.CounterVec
}

func newRefusalBudget(now func() time.Time) *refusalBudget {
	if now == nil {
		now = time.Now
	}
	return &refusalBudget{
		budget: ratelimit.NewAnonymousRefusalBudget(now),
		unrecorded: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "thiqa_tsa_refusals_unrecorded_total",
			Help: "Refused time-stamp requests counted but not recorded in the audit log, by the budget that left them out (address, overall).",
		}, []string{"budget"}),
	}
}

// refusal is what a refusal's item says.
type refusal struct {
	fail       tsp.FailInfo
	httpStatus int // an HTTP refusal: no failInfo
	text       string
	hash       string
	reason     string
	err        string
	// identify, when set, names the requester of an HTTP refusal; it is
	// called only for a refusal the budget lets be recorded, since it may
	// verify credentials (auth.Requester) and a refused request is not
	// worth that (the POST path has the requester already).
	identify func(*http.Request) string
}

// clients reports whether the refusal is of a request the TSA will not
// serve (the client's to mend: outcome refused) rather than one it could
// not (timeNotAvailable, systemFailure: outcome failure).
func (rf refusal) clients() bool {
	if rf.httpStatus != 0 {
		return true
	}
	switch rf.fail {
	case tsp.BadAlg, tsp.BadRequest, tsp.BadDataFormat, tsp.UnacceptedPolicy, tsp.UnacceptedExtension:
		return true
	}
	return false
}

// refusalItem is the JSON of a refusal's item (keys in alphabetical order).
type refusalItem struct {
	Address           string `json:"address,omitempty"`
	Error             string `json:"error,omitempty"`
	FailInfo          string `json:"failInfo,omitempty"`
	HashAlgorithm     string `json:"hashAlgorithm,omitempty"`
	HTTPStatus        int    `json:"httpStatus,omitempty"`
	Note              string `json:"note,omitempty"`
	Reason            string `json:"reason,omitempty"`
	Requester         string `json:"requester"`
	Text              string `json:"text"`
	UnrecordedOverall int64  `json:"unrecordedOverall,omitempty"`
}

// recordRefusal records rf, a refusal of the request r from requester
// (rf.identify's answer instead, when set), within the budget (r nil: a
// caller in the same process, not bounded). It returns the error of the
// record, nil when it was written or left out.
func (a *Authority) recordRefusal(ctx context.Context, r *http.Request, requester string, rf refusal) error {
	group := a.refusals
	if rf.clients() {
		group = a.clientRefusals
	}
	if group == nil {
		return nil
	}
	var item refusalItem
	undo := func() {}
	if r != nil {
		b := a.budget
		addr := clientip.FromRequest(r).Key()
		v := b.budget.Take(addr)
		if !v.Record {
			if v.LeftOverall {
				b.unrecorded.WithLabelValues(budgetOverall).Inc()
			} else {
				b.unrecorded.WithLabelValues(budgetAddress).Inc()
			}
			return nil
		}
		if v.Past {
			item.Note = refusalNote
		}
		item.Address, item.UnrecordedOverall = addr, v.Unrecorded
		undo = v.Undo
		if rf.identify != nil {
			requester = rf.identify(r)
		}
	}
	item.Requester, item.Text, item.HashAlgorithm, item.HTTPStatus = requester, clip(rf.text), clip(rf.hash), rf.httpStatus
	item.Reason, item.Error = rf.reason, rf.err
	if rf.httpStatus == 0 {
		item.FailInfo = rf.fail.String()
	}
	buf, err := json.Marshal(item)
	if err == nil {
		_, err = group.Append(context.WithoutCancel(ctx), buf)
	}
	if err != nil {
		undo() // the run's next refusal is recorded instead
		a.log.Error("recording a refused time-stamp request", "err", err)
	}
	return err
}

// clip cuts s to at most maxRefusalText bytes, on a rune boundary.
func clip(s string) string {
	if len(s) <= maxRefusalText {
		return s
	}
	n := maxRefusalText
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n] + "…"
}

// refused records the PKIStatus refusal rej of the request r (nil in
// process) and returns the refusal to answer: rej, or when its record
// cannot be written the answer of a token whose record cannot be written
// (failure); a systemFailure keeps its own answer.
func (a *Authority) refused(ctx context.Context, r *http.Request, requester string, rej *rejection) *rejection {
	rf := refusal{fail: rej.fail, text: rej.text, hash: rej.hash, reason: rej.reason}
	if rej.reason != "" && rej.cause != nil {
		rf.err = rej.cause.Error()
	}
	err := a.recordRefusal(ctx, r, requester, rf)
	if err == nil || rej.fail == tsp.SystemFailure {
		return rej
	}
	return failure(err)
}
