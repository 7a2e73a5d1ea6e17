package timestamp

import (
	"context"
	"encoding/hex"
	"sync"
	"time"

	"github.com/thiqa/thiqa/internal/audit"
)

// Audit records of the TSA.
const (
	// ActionIssue is the audit action of every token.
	ActionIssue = "timestamp.issue"
	// ActionRenewUnit is the audit action of a unit renewal.
	ActionRenewUnit = "tsa.unit.renew"
	// AuditActor is the actor of the ActionIssue records: the TSA itself;
	// each token's requester is in its item.
	AuditActor = "thiqa-tsa"
)

// Grouper opens a collective record of the audit log (*audit.Log).
type Grouper interface {
	Group(actor, action, object, outcome string) (*audit.Group, error)
}

// AuditRecorder records every token in the group-committing audit log (a
// Recorder): Record returns once the record holding the token is durable.
// The tokens of one audit batch share one hash-chained timestamp.issue
// record (audit.Group): actor thiqa-tsa, object the unit certificate's
// serial (hex), details
//
//	{"count":2,"items":[
//	  {"genTime":"2026-11-22T12:00:00.123Z","hashAlgorithm":"SHA-256","imprint":"<hex>",
//	   "policy":"0.4.0.2023.1.1","requester":"addr:192.0.2.7","serial":"1001"},
//	  {…}]}
//
// Recording allocates nothing per token once warm: item buffers are
// recycled.
type AuditRecorder struct {
	group *audit.Group
	bufs  sync.Pool // *[]byte item buffers
}

// NewAuditRecorder returns the recorder of the unit whose certificate
// serial is unit (hex).
func NewAuditRecorder(log Grouper, unit string) (*AuditRecorder, error) {
	g, err := log.Group(AuditActor, ActionIssue, unit, audit.OutcomeSuccess)
	if err != nil {
		return nil, err
	}
	return &AuditRecorder{group: g}, nil
}

// Record implements Recorder.
func (r *AuditRecorder) Record(ctx context.Context, rec TokenRecord) error {
	bp, _ := r.bufs.Get().(*[]byte)
	if bp == nil {
		bp = new([]byte)
	}
	item := appendTokenItem((*bp)[:0], rec)
	if _, err := r.group.Append(ctx, item); err != nil {
		// The item may still be queued: its buffer is not reused.
		return err
	}
	// Committed: the log has copied the item into the record.
	*bp = item
	r.bufs.Put(bp)
	return nil
}

// appendTokenItem encodes a token's audit item (keys in alphabetical order).
func appendTokenItem(b []byte, rec TokenRecord) []byte {
	b = append(b, `{"genTime":"`...)
	b = rec.GenTime.UTC().AppendFormat(b, time.RFC3339Nano)
	b = append(b, `","hashAlgorithm":`...)
	b = audit.AppendJSONString(b, rec.HashAlgorithm.String())
	b = append(b, `,"imprint":"`...)
	b = hex.AppendEncode(b, rec.Imprint)
	b = append(b, `","policy":`...)
	b = audit.AppendJSONString(b, rec.Policy)
	b = append(b, `,"requester":`...)
	b = audit.AppendJSONString(b, rec.Requester)
	b = append(b, `,"serial":"`...)
	b = rec.Serial.Append(b, 10)
	return append(b, `"}`...)
}
