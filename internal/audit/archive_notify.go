package audit

import (
	"context"
	"errors"
	"fmt"
)

// ErrUndelivered is returned (wrapped) by Archive when the records it
// would archive include some that the notifications to citizens (package
// notify) have not reached yet: once archived, the notifier skips them and
// their citizens are never told. ArchiveOptions.SkipUndelivered archives
// them anyway.
var ErrUndelivered = errors.New("audit: records not notified yet")

// ArchiveStart is what the store reads, in the transaction that records
// an archived range, for the audit record Archive appends with it.
type ArchiveStart struct {
	// Head is the audit head the record continues.
	Head Head
	// NotifyCursor is the seq of the last audit record the notifier dealt
	// with; NotifyCursorSet is false when the notifier never ran (its
	// first run starts at the head: nothing before it is told).
	NotifyCursor    int64
	NotifyCursorSet bool
}

// notifyCursor is the notifier's cursor as Archive read it before
// choosing the range.
type notifyCursor struct {
	seq int64
	set bool
}

// behind reports whether records up to last include some the notifier
// has not dealt with.
func (c notifyCursor) behind(last int64) bool {
	return c.set && c.seq < last
}

// undeliveredError is the refusal to archive records first to last while
// the notifier's cursor is at cursor (first > cursor). through says
// whether an archive --through cursor would find a signed checkpoint to
// end at (one at or after the first live record and at or before the
// cursor): only then is it suggested. enabled says whether notifications
// are on in thiqa.yaml.
func undeliveredError(first, last, cursor int64, through, enabled bool) error {
	hint := "wait for the notifier (thiqa_notify_lag_records)"
	if !enabled {
		hint = fmt.Sprintf("notifications are off (notify.enabled) but the notifier stopped at record %d: turn them on and wait for the notifier (thiqa_notify_lag_records), or, if they are off for good, retire its cursor (thiqa notify retire)", cursor)
	}
	if through {
		hint += fmt.Sprintf(" or archive --through %d", cursor)
	}
	return fmt.Errorf("%w: records %d to %d have not been notified yet; %s (--skip-undelivered archives them anyway: their citizens are never told)",
		ErrUndelivered, first, last, hint)
}

// readNotifyCursor reads the notifier's cursor from st.
func readNotifyCursor(ctx context.Context, st ArchiveStore) (notifyCursor, error) {
	seq, set, err := st.AuditNotifyCursor(ctx)
	if err != nil {
		return notifyCursor{}, fmt.Errorf("audit: reading the notification cursor: %w", err)
	}
	return notifyCursor{seq: seq, set: set}, nil
}

// capAtNotified returns cands (checkpoints in seq order, from the first
// live record from on) without those past the notifier's cursor c, unless
// o allows archiving undelivered records: --through refuses (the operator
// named the end), --before stops at the newest checkpoint the notifier
// has passed (an "older than T" sweep archives what it can now and the
// rest on a later run), and refuses when none is. capped says whether
// checkpoints were dropped.
func capAtNotified(cands []Checkpoint, c notifyCursor, o ArchiveOptions, from int64) (kept []Checkpoint, capped bool, err error) {
	if o.SkipUndelivered || len(cands) == 0 || !c.behind(cands[len(cands)-1].Seq) {
		return cands, false, nil
	}
	n := len(cands)
	for n > 0 && c.behind(cands[n-1].Seq) {
		n--
	}
	if o.Before.IsZero() || n == 0 {
		// --through CURSOR ends at cands[n-1]; with n == 0 no signed
		// checkpoint lies between the first live record and the cursor,
		// and it would only be refused again.
		return nil, false, undeliveredError(max(c.seq+1, from), cands[len(cands)-1].Seq, c.seq, n > 0, o.NotifyEnabled)
	}
	return cands[:n], true, nil
}
