package cmp

import (
	"errors"
	"fmt"
	"testing"

	"github.com/thiqa/thiqa/internal/audit/audittest"
	"github.com/thiqa/thiqa/internal/outage"
	"github.com/thiqa/thiqa/store/storetest"
)

// No answer leaves without its audit record: while the enrolment
// service's audit log cannot be written, a request the server would
// refuse, and a genm it would answer, get an error message with
// systemFailure instead; once the log is back they are answered as before.
func TestCMPUnrecordedAnswerIsASystemFailure(t *testing.T) {
	f := newFixture(t, storetest.Dialects()[0])
	ctx := t.Context()
	ref, secret := f.enrolment(t)
	for _, down := range []bool{true, false} {
		f.auditGate.Down.Store(down)
		for _, tc := range []struct {
			what string
			der  []byte
			want string
		}{
			{"malformed DER", []byte{0x30, 0x03, 0x02, 0x01}, "badDataFormat"},
			{"unknown body type", (&client{ref: ref, secret: secret}).message(t, 9, []byte{0x30, 0}), "badRequest"},
		} {
			want := tc.want
			if down {
				want = "systemFailure"
			}
			if a := parseAnswer(t, f.srv.Handle(ctx, tc.der, "")); a.m.bodyType != bodyError || a.failInfo != want {
				t.Errorf("audit down %v: %s answered %s %q, want error %s", down, tc.what, bodyName(a.m.bodyType), a.failInfo, want)
			}
		}
		a := parseAnswer(t, f.srv.Handle(ctx, (&client{}).message(t, bodyGenM, []byte{0x30, 0}), ""))
		switch {
		case down && (a.m.bodyType != bodyError || a.failInfo != "systemFailure"):
			t.Errorf("audit down: genm answered %s %q, want error systemFailure", bodyName(a.m.bodyType), a.failInfo)
		case !down && a.m.bodyType != bodyGenP:
			t.Errorf("audit up: genm answered %s %q, want genp", bodyName(a.m.bodyType), a.failInfo)
		}
	}
}

// A request refused or answered while the audit log is down for now (its
// error marked as an outage, as the store marks an unreachable database)
// is answered systemUnavail, RFC 4210's "try later", instead of
// systemFailure; any other failure stays systemFailure.
func TestCMPOutageIsSystemUnavail(t *testing.T) {
	f := newFixture(t, storetest.Dialects()[0])
	ctx := t.Context()
	ref, secret := f.enrolment(t)
	f.auditGate.Err = outage.Mark(fmt.Errorf("store: appending: %w", audittest.ErrDown))
	f.auditGate.Down.Store(true)
	for _, tc := range []struct {
		what string
		der  []byte
	}{
		{"malformed DER", []byte{0x30, 0x03, 0x02, 0x01}},
		{"unknown body type", (&client{ref: ref, secret: secret}).message(t, 9, []byte{0x30, 0})},
		{"genm", (&client{}).message(t, bodyGenM, []byte{0x30, 0})},
	} {
		if a := parseAnswer(t, f.srv.Handle(ctx, tc.der, "")); a.m.bodyType != bodyError || a.failInfo != "systemUnavail" {
			t.Errorf("audit log down for now: %s answered %s %q, want error systemUnavail", tc.what, bodyName(a.m.bodyType), a.failInfo)
		}
	}
	for _, tc := range []struct {
		err  error
		want FailInfo
	}{
		{outage.Mark(errors.New("hsm: token unavailable")), SystemUnavail},
		{fmt.Errorf("issuing: %w", outage.Mark(errors.New("db down"))), SystemUnavail},
		{errors.New("hsm: general error"), SystemFailure},
		{audittest.ErrDown, SystemFailure},
	} {
		if got := systemError(tc.err, "x").fail; got != tc.want {
			t.Errorf("systemError(%v) = %s, want %s", tc.err, got, tc.want)
		}
	}
}
