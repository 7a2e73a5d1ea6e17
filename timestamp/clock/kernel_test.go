package clock

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/thiqa/thiqa/timestamp"
)

func TestJudge(t *testing.T) {
	cases := []struct {
		name   string
		ks     KernelState
		inSync bool
		reason string
	}{
		{"synchronised", KernelState{MaxError: 200 * time.Millisecond}, true, ""},
		{"unsync flag", KernelState{Unsynchronised: true, MaxError: time.Millisecond}, false, "STA_UNSYNC"},
		{"error too large", KernelState{MaxError: 1500 * time.Millisecond}, false, "exceeds"},
		{"at the bound", KernelState{MaxError: time.Second}, true, ""},
	}
	for _, c := range cases {
		st := Judge(c.ks, time.Second)
		if st.InSync != c.inSync || !strings.Contains(st.Reason, c.reason) || st.Source != "kernel" {
			t.Errorf("%s: %+v", c.name, st)
		}
	}
}

func TestKernelCheck(t *testing.T) {
	k, err := NewKernel(time.Second)
	if err != nil {
		t.Fatal(err)
	}
	k.read = func() (KernelState, error) { return KernelState{}, errors.New("boom") }
	if _, err := k.Check(context.Background()); err == nil {
		t.Fatal("a failed read is not an error")
	}
	k.read = func() (KernelState, error) { return KernelState{MaxError: 10 * time.Millisecond}, nil }
	if st, err := k.Check(context.Background()); err != nil || !st.InSync || st.Offset != 10*time.Millisecond {
		t.Fatalf("%+v %v", st, err)
	}
	if _, err := NewKernel(0); err == nil {
		t.Fatal("NewKernel(0) accepted")
	}
}

// The real kernel answers (whatever its state on this machine).
func TestKernelReal(t *testing.T) {
	k, _ := NewKernel(time.Second)
	st, err := k.Check(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if !st.InSync && st.Reason == "" {
		t.Fatalf("out of sync without a reason: %+v", st)
	}
	t.Logf("kernel clock: %+v", st)
}

func TestNewCachedKernel(t *testing.T) {
	if c, err := NewCachedKernel(timestamp.ClockConfig{}, 0); err != nil || c == nil {
		t.Fatalf("defaults: %v", err)
	}
	if _, err := NewCachedKernel(timestamp.ClockConfig{MaxError: -time.Second}, time.Second); err == nil {
		t.Fatal("a negative error bound was accepted")
	}
	if _, err := NewCachedKernel(timestamp.ClockConfig{Interval: time.Second, MaxAge: time.Millisecond}, time.Second); err == nil {
		t.Fatal("an answer younger than the interval was accepted")
	}
}
