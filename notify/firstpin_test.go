package notify

import (
	"encoding/json"
	"testing"

	"github.com/thiqa/thiqa/identity/activity"
)

// TestFirstPINNotification: the activation code of a new credential's
// first PIN (signing.pinPolicy.firstPINActivation) is recorded as
// credential.pin.reset with "firstPIN": true; its notification keeps the
// event (a contract) but says, in both languages, that a code was issued
// for the first PIN, not that a PIN was reset, and says firstPIN in its
// details. An officer's reset is told as before.
func TestFirstPINNotification(t *testing.T) {
	st := ownedStore()
	g := newGateway(t, testSecret)
	n := testNotifier(t, st, g.srv.URL, Options{})
	drain(t, n)
	st.add(activity.Record{Actor: "officer-1", Action: "credential.pin.reset", Object: "cred-a", Outcome: "success",
		Details: json.RawMessage(`{"firstPIN":true,"certificate":"0aaa","expiresAt":"2030-01-02T03:04:05Z"}`)})
	st.add(activity.Record{Actor: "officer-1", Action: "credential.pin.reset", Object: "cred-a", Outcome: "success",
		Details: json.RawMessage(`{"kind":"signing"}`)})
	drain(t, n)
	g.mu.Lock()
	defer g.mu.Unlock()
	if len(g.got) != 2 {
		t.Fatalf("notified %+v", g.got)
	}
	first, reset := g.got[0], g.got[1]
	if first.Event != EventPINReset || first.Description.EN != "Activation code issued for your first signing PIN" ||
		first.Description.AR != arabicFirstPIN || first.Details["firstPIN"] != true || first.Details["by"] != activity.ByRegistrationOfficer {
		t.Fatalf("the first PIN's code: %+v", first)
	}
	if reset.Event != EventPINReset || reset.Description.EN != "PIN reset (an activation code issued)" ||
		reset.Description.AR != arabic[EventPINReset] || reset.Details["firstPIN"] != nil {
		t.Fatalf("an officer's reset: %+v", reset)
	}
}
