package timestamp

import (
	"context"
	"testing"

	"github.com/thiqa/thiqa/timestamp/tsp"
)

// revokingRecorder records like memRecorder and has the unit revoked while
// it does: the revocation commits (and the revocation service tells the
// TSA) between a request's revocation check and its signature.
type revokingRecorder struct {
	*memRecorder
	a *Authority
}

func (r revokingRecorder) Record(ctx context.Context, rec TokenRecord) error {
	r.a.revoked.Store(true)
	return r.memRecorder.Record(ctx, rec)
}

// A request in flight when the unit is revoked gets no token signed by it:
// the answer is systemFailure, as for the requests that come after.
func TestRevokedWhileIssuingReturnsNoToken(t *testing.T) {
	tsa := newTestTSA(t, Config{}, nil)
	tsa.Authority.recorder = revokingRecorder{memRecorder: tsa.recorder, a: tsa.Authority}
	out, st := tsa.Respond(t.Context(), goQuery(t, nil), "")
	if st.Status != tsp.StatusRejection || st.FailInfo != tsp.SystemFailure {
		t.Fatalf("status %v, want systemFailure: a token signed by the unit revoked while it was issued", st)
	}
	resp, err := tsp.ParseResponse(out)
	if err != nil {
		t.Fatal(err)
	}
	if len(resp.Token) != 0 {
		t.Fatal("the response carries a token")
	}
	tsa.revoked.Store(false)
	tsa.Authority.recorder = revokingRecorder{memRecorder: tsa.recorder, a: tsa.Authority}
	if _, err := tsa.Issue(t.Context(), goQuery(t, nil), ""); err == nil {
		t.Fatal("Issue returned a token signed by the unit revoked while it was issued")
	}
}
