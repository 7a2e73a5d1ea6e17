package clock

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/thiqa/thiqa/timestamp"
)

// KernelState is what adjtimex(2) reports about the system clock.
type KernelState struct {
	// Unsynchronised is the STA_UNSYNC status bit, or the TIME_ERROR clock
	// state: no NTP daemon has told the kernel that the clock is in sync.
	Unsynchronised bool
	// MaxError is the kernel's maximum error bound (maxerror), which grows
	// by 500 ppm while nobody updates it.
	MaxError time.Duration
	// EstError is the estimated error (esterror).
	EstError time.Duration
}

// Kernel is a timestamp.ClockChecker reading the kernel's NTP state: the
// clock is in sync when the kernel does not flag it unsynchronised and its
// maximum error bound is within MaxError.
type Kernel struct {
	maxError time.Duration
	read     func() (KernelState, error)
}

// NewKernel returns a Kernel checker accepting an error bound up to maxError
// (the TSA's declared accuracy or less).
func NewKernel(maxError time.Duration) (*Kernel, error) {
	if maxError <= 0 {
		return nil, errors.New("clock: kernel checker needs a positive maximum error")
	}
	return &Kernel{maxError: maxError, read: readKernel}, nil
}

// Check implements timestamp.ClockChecker.
func (k *Kernel) Check(ctx context.Context) (timestamp.ClockStatus, error) {
	if err := ctx.Err(); err != nil {
		return timestamp.ClockStatus{}, err
	}
	ks, err := k.read()
	if err != nil {
		return timestamp.ClockStatus{}, fmt.Errorf("clock: reading the kernel clock state: %w", err)
	}
	return Judge(ks, k.maxError), nil
}

// Judge turns a kernel state into a clock status against maxError.
func Judge(ks KernelState, maxError time.Duration) timestamp.ClockStatus {
	st := timestamp.ClockStatus{InSync: true, Offset: ks.MaxError, Source: "kernel", CheckedAt: time.Now()}
	switch {
	case ks.Unsynchronised:
		st.InSync = false
		st.Reason = "the kernel reports the clock unsynchronised (STA_UNSYNC): no NTP daemon disciplines it"
	case ks.MaxError > maxError:
		st.InSync = false
		st.Reason = fmt.Sprintf("kernel maximum clock error %v exceeds %v", ks.MaxError, maxError)
	}
	return st
}

// NewCachedKernel returns the TSA's clock check reading the kernel, cached
// as cc says: the error bound is cc.MaxError, else the declared accuracy,
// else one second; the interval defaults to one second and the age an
// answer counts for to five intervals.
func NewCachedKernel(cc timestamp.ClockConfig, accuracy time.Duration) (*timestamp.CachedChecker, error) {
	maxErr := cc.MaxError
	if maxErr == 0 {
		maxErr = accuracy
	}
	if maxErr == 0 {
		maxErr = time.Second
	}
	k, err := NewKernel(maxErr)
	if err != nil {
		return nil, err
	}
	interval, maxAge := cc.Interval, cc.MaxAge
	if interval == 0 {
		interval = time.Second
	}
	if maxAge == 0 {
		maxAge = 5 * interval
	}
	return timestamp.NewCachedChecker(k, interval, maxAge)
}
