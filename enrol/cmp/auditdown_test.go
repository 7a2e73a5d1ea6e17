package cmp

import (
	"testing"

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
