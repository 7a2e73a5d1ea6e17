package enrol

import (
	"context"
	"errors"
	"fmt"
	"time"
	"unicode/utf8"

	"github.com/thiqa/thiqa/internal/audit"
)

// ActionVoid records an officer voiding an enrolment (its secret leaked,
// given to the wrong person, printed on a lost letter).
const ActionVoid = "enrolment.void"

// MaxVoidReason bounds the reason given for a void, in characters.
const MaxVoidReason = 500

// Void withdraws the enrolment with that reference for actor: from now a
// CMP or EST request under it is refused as one under a used or expired
// enrolment is, and the refusal record says void. It returns the
// enrolment as it is now. Voiding a void enrolment again answers it as
// it is (idempotent). Refusals: ErrNotFound, ErrUsed (its certificate
// was issued, even when its use could not be recorded: revoke that
// instead, then the void goes through), ErrBusy (a request is being issued
// under it this moment: try again), *RequestError (reason too long).
// Every outcome is audited (ActionVoid) before Void returns; a void is
// committed together with its record.
func (s *Service) Void(ctx context.Context, actor, reference, reason string) (*Enrolment, error) {
	e, err := s.void(ctx, actor, reference, reason)
	if err == nil {
		return e, nil
	}
	details := map[string]any{"reason": reason, "error": err.Error()}
	entry := audit.Entry{Actor: actor, Action: ActionVoid, Object: reference, Outcome: audit.OutcomeRefused, Details: details}
	if !errors.Is(err, ErrNotFound) && !errors.Is(err, ErrUsed) && !errors.Is(err, ErrBusy) && !isRefusal(err) {
		entry.Outcome = audit.OutcomeFailure
	}
	if _, aerr := s.c.Audit.Append(ctx, entry); aerr != nil {
		return nil, fmt.Errorf("writing the audit record: %w", aerr)
	}
	return nil, err
}

func (s *Service) void(ctx context.Context, actor, reference, reason string) (*Enrolment, error) {
	if !validReference(reference) {
		return nil, fmt.Errorf("%w: malformed reference", ErrNotFound)
	}
	if utf8.RuneCountInString(reason) > MaxVoidReason || !utf8.ValidString(reason) {
		return nil, &RequestError{Reason: fmt.Sprintf("the reason must be valid UTF-8 of at most %d characters", MaxVoidReason)}
	}
	now := s.now().UTC()
	seal, err := s.c.Audit.Prepare(audit.Entry{Actor: actor, Action: ActionVoid, Object: reference, Outcome: audit.OutcomeSuccess,
		Details: map[string]any{"reason": reason}})
	if err != nil {
		return nil, fmt.Errorf("preparing the audit record: %w", err)
	}
	err = s.c.Store.VoidEnrolment(ctx, reference, now, now.Add(-ClaimTimeout), seal)
	if errors.Is(err, ErrVoid) {
		// Void already: answered as it is, and the repeat recorded too.
		if _, aerr := s.c.Audit.Append(ctx, audit.Entry{Actor: actor, Action: ActionVoid, Object: reference, Outcome: audit.OutcomeSuccess,
			Details: map[string]any{"reason": reason, "already": true}}); aerr != nil {
			return nil, fmt.Errorf("writing the audit record: %w", aerr)
		}
		err = nil
	}
	if err != nil {
		return nil, fmt.Errorf("voiding enrolment %s: %w", reference, err)
	}
	e, err := s.c.Store.GetEnrolment(ctx, reference)
	if err != nil {
		return nil, fmt.Errorf("reading enrolment %s after its void: %w", reference, err)
	}
	return e, nil
}

// Status is an enrolment's state as the API answers it (never its
// secret).
type Status struct {
	Reference string            `json:"reference"`
	Profile   string            `json:"profile"`
	Subject   map[string]string `json:"subject"`
	// State is open, claimed, used or void.
	State   string    `json:"state"`
	Created time.Time `json:"created"`
	Expires time.Time `json:"expires"`
	// Voided is when a void enrolment was voided.
	Voided *time.Time `json:"voided,omitempty"`
	// Serial is the certificate issued under a used enrolment.
	Serial string `json:"serial,omitempty"`
}

// StatusOf returns e as the API answers it.
func StatusOf(e *Enrolment) Status {
	st := Status{Reference: e.Reference, Profile: e.Profile, Subject: e.Subject, State: e.State, Created: e.Created, Expires: e.Expires, Serial: e.Serial}
	if st.Subject == nil {
		st.Subject = map[string]string{}
	}
	if !e.Voided.IsZero() {
		v := e.Voided
		st.Voided = &v
	}
	return st
}
