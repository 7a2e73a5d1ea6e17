package ratelimit

import "time"

// RefusalBudget bounds the refusals of anonymous requests that a service
// records in its audit log: a budget per client address (a Limiter's
// Record: within it every refusal, past it the first of each run) and,
// for those the address's budget would record, an overall budget across
// all addresses (an Overall). It is safe for concurrent use.
//
// The accounting adds up. Each refusal taken is one of three: recorded
// (Record), its record carrying Unrecorded; left out by its address's
// budget (Past, not Record), which the service counts in a metric of its
// own; or left out by the overall budget (LeftOverall), which the next
// recorded refusal's Unrecorded counts. So the records written, plus
// their Unrecorded counts, plus the count the next record will carry,
// equal the refusals the address budgets would record, less those whose
// record could not be written. Such a record calls Undo: the count it
// carried goes to the next record, and the address's run starts again,
// so that its next refusal is recorded rather than none; the refusal
// itself is neither recorded nor counted here (the service answers it as
// a failure).
type RefusalBudget struct {
	addrs   *Limiter
	overall *Overall
}

// The budget per client address of the refusals of anonymous requests
// that every service records (NewAnonymousRefusalBudget): 10 at once,
// then one every 10 s. Anyone may send such requests, as many as they
// like, and the audit log is not theirs to fill.
const (
	AnonymousBurst = 10
	AnonymousRate  = 0.1
)

// NewAnonymousRefusalBudget returns the budget of recorded refusals of
// anonymous requests every service uses: AnonymousBurst at once and
// AnonymousRate per second for each address, within OverallBurst and
// OverallRate across all addresses.
func NewAnonymousRefusalBudget(now func() time.Time) *RefusalBudget {
	return NewRefusalBudget(AnonymousRate, AnonymousBurst, OverallRate, OverallBurst, now)
}

// NewRefusalBudget returns a budget of burst recorded refusals at once and
// rate per second on average for each address, within overallBurst at
// once and overallRate per second across all addresses (services use
// OverallRate and OverallBurst), reading the time from now.
func NewRefusalBudget(rate float64, burst int, overallRate float64, overallBurst int, now func() time.Time) *RefusalBudget {
	return &RefusalBudget{addrs: New(rate, burst, now), overall: NewOverall(overallRate, overallBurst, now)}
}

// Refusal is the budget's verdict on one refusal (RefusalBudget.Take).
type Refusal struct {
	// Record: record the refusal (within both budgets).
	Record bool
	// Past: the refusal is past its address's budget; when recorded it
	// is the first of its run, and its record says that the run's further
	// refusals are not recorded.
	Past bool
	// LeftOverall: the address's budget would record the refusal but the
	// overall budget leaves it out; the next recorded refusal counts it.
	LeftOverall bool
	// Unrecorded, when Record, is the count of refusals the overall
	// budget left out since the last recorded one, which the record
	// carries (unrecordedOverall).
	Unrecorded int64

	b    *RefusalBudget
	addr string
}

// Take takes one refusal of the client address addr from the budget and
// says whether to record it.
func (b *RefusalBudget) Take(addr string) Refusal {
	record, past := b.addrs.Record(addr)
	v := Refusal{Past: past}
	if !record {
		return v
	}
	ok, n := b.overall.Take()
	if !ok {
		v.LeftOverall = true
		return v
	}
	v.Record, v.Unrecorded, v.b, v.addr = true, n, b, addr
	return v
}

// Undo is for a recorded refusal (Record) whose record could not be
// written: the address's next refusal is the first of a run again, and the
// next recorded refusal carries Unrecorded. Call it at most once; it does
// nothing when the refusal was not to be recorded.
func (v Refusal) Undo() {
	if !v.Record || v.b == nil {
		return
	}
	v.b.addrs.ResetStreak(v.addr)
	v.b.overall.Restore(v.Unrecorded)
}
