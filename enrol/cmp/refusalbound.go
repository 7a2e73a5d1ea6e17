package cmp

import (
	"context"
	"encoding/hex"

	"github.com/thiqa/thiqa/internal/audit"
)

// recordBounded calls record with details for a refusal of a message from
// the client address addr that is not authenticated (it does not parse,
// is too large, or its protection fails; or an unprotected genm, answered
// or refused), within the address's budget
// (ratelimit.NewAnonymousRefusalBudget; every such message is still
// answered and counted in thiqa_cmp_requests_total); past it, only for
// the first refusal of each run, noted so; and within the
// server's overall budget of such records (ratelimit.OverallBurst,
// OverallRate): past it none is recorded, and the next recorded one
// carries how many were not (unrecordedOverall). It returns record's
// error (the run's next refusal is then recorded instead), nil when the
// refusal is not recorded. An empty addr (Handle, no HTTP request) is not
// bounded.
func (s *Server) recordBounded(addr string, details map[string]any, record func(map[string]any) error) error {
	if addr == "" {
		return record(details)
	}
	v := s.refusals.Take(addr)
	if !v.Record {
		return nil
	}
	if v.Unrecorded > 0 {
		details["unrecordedOverall"] = v.Unrecorded
	}
	if v.Past {
		details["note"] = "further refusals of this address in a row are counted in thiqa_cmp_requests_total, not recorded"
	}
	if err := record(details); err != nil {
		v.Undo()
		return err
	}
	return nil
}

// refuse records the refusal e of m and returns the error to answer: e,
// or systemFailure (systemUnavail when the audit log is down for now) when
// the record cannot be written (no refusal leaves without its record).
func (s *Server) refuse(ctx context.Context, m *message, p *party, e *cmpError) *cmpError {
	return s.refuseFrom(ctx, "", m, p, e)
}

// refuseFrom is refuse for a message from addr that did not authenticate:
// recorded within the address's budget (recordBounded).
func (s *Server) refuseFrom(ctx context.Context, addr string, m *message, p *party, e *cmpError) *cmpError {
	actor := ""
	if p != nil {
		actor = p.actor
	}
	if err := s.recordBounded(addr, map[string]any{
		"failInfo": e.fail.String(), "body": bodyName(m.bodyType), "transactionID": hex.EncodeToString(m.header.TransactionID)}, func(d map[string]any) error {
		return s.c.Enrol.Refused(ctx, actor, "cmp:"+bodyName(m.bodyType), "cmp", e, d)
	}); err != nil {
		return errUnrecorded(err)
	}
	return e
}

// recordGenm records the answer to a genm (cmp.genm): always for an
// authenticated sender, within the address's budget (recordBounded) for an
// anonymous one, whose unprotected genm anyone may send as often as they
// like. It returns the error of the record's append.
func (s *Server) recordGenm(ctx context.Context, p *party) error {
	return s.recordBounded(p.addr, map[string]any{}, func(d map[string]any) error {
		if _, past := d["note"]; past {
			d["note"] = "further unprotected genm of this address in a row are counted in thiqa_cmp_requests_total, not recorded"
		}
		if len(d) == 0 {
			d = nil
		}
		return s.c.Enrol.Audit(ctx, audit.Entry{Actor: p.actor, Action: "cmp.genm", Object: "ca-certificates", Outcome: audit.OutcomeSuccess, Details: d})
	})
}
