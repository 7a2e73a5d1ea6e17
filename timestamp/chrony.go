package timestamp

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"math"
	"os/exec"
	"strconv"
	"strings"
	"time"
)

// ChronyTracking is the output of `chronyc -c tracking`.
type ChronyTracking struct {
	RefID          string
	RefName        string
	Stratum        int
	RefTime        time.Time
	SystemOffset   time.Duration // signed; the distance of the system clock from NTP time
	LastOffset     time.Duration
	RMSOffset      time.Duration
	FrequencyPPM   float64
	ResidualPPM    float64
	SkewPPM        float64
	RootDelay      time.Duration
	RootDispersion time.Duration
	UpdateInterval time.Duration
	LeapStatus     string
}

// MaxError is chrony's bound on the clock error against the reference:
// |system offset| + root dispersion + root delay / 2.
func (t ChronyTracking) MaxError() time.Duration {
	off := t.SystemOffset
	if off < 0 {
		off = -off
	}
	return off + t.RootDispersion + t.RootDelay/2
}

func secondsField(s string) (time.Duration, error) {
	f, err := strconv.ParseFloat(s, 64)
	if err != nil || math.IsNaN(f) || math.IsInf(f, 0) || math.Abs(f) > 1e9 {
		return 0, fmt.Errorf("bad seconds value %q", s)
	}
	return time.Duration(f * float64(time.Second)), nil
}

// ParseChronyTracking parses one line of `chronyc -c tracking` output: 14
// comma-separated fields (reference ID, reference name, stratum, ...), or
// the 13 fields of versions that print no reference name.
func ParseChronyTracking(out []byte) (ChronyTracking, error) {
	var t ChronyTracking
	line := strings.TrimSpace(string(bytes.SplitN(out, []byte("\n"), 2)[0]))
	f := strings.Split(line, ",")
	if len(f) == 13 {
		f = append([]string{f[0], ""}, f[1:]...)
	}
	if len(f) != 14 {
		return t, fmt.Errorf("chronyc tracking: want 14 CSV fields, got %d", len(f))
	}
	t.RefID, t.RefName, t.LeapStatus = f[0], f[1], f[13]
	var err error
	if t.Stratum, err = strconv.Atoi(f[2]); err != nil || t.Stratum < 0 || t.Stratum > 16 {
		return t, fmt.Errorf("chronyc tracking: bad stratum %q", f[2])
	}
	ref, err := strconv.ParseFloat(f[3], 64)
	if err != nil || math.IsNaN(ref) || ref < 0 || ref > 1e11 {
		return t, fmt.Errorf("chronyc tracking: bad reference time %q", f[3])
	}
	sec, frac := math.Modf(ref)
	t.RefTime = time.Unix(int64(sec), int64(frac*1e9)).UTC()
	durations := []struct {
		dst *time.Duration
		i   int
	}{{&t.SystemOffset, 4}, {&t.LastOffset, 5}, {&t.RMSOffset, 6}, {&t.RootDelay, 10}, {&t.RootDispersion, 11}, {&t.UpdateInterval, 12}}
	for _, d := range durations {
		if *d.dst, err = secondsField(f[d.i]); err != nil {
			return t, fmt.Errorf("chronyc tracking field %d: %w", d.i+1, err)
		}
	}
	floats := []struct {
		dst *float64
		i   int
	}{{&t.FrequencyPPM, 7}, {&t.ResidualPPM, 8}, {&t.SkewPPM, 9}}
	for _, p := range floats {
		v, err := strconv.ParseFloat(f[p.i], 64)
		if err != nil || math.IsNaN(v) || math.IsInf(v, 0) {
			return t, fmt.Errorf("chronyc tracking field %d: bad number %q", p.i+1, f[p.i])
		}
		*p.dst = v
	}
	return t, nil
}

// ChronyChecker checks the clock with `chronyc -c tracking`: in sync when
// chrony is synchronised (leap status not "Not synchronised", stratum 1-15)
// and its error bound is within MaxError.
type ChronyChecker struct {
	// Path is the chronyc program; default "chronyc".
	Path string
	// MaxError is the largest acceptable error bound: the declared accuracy.
	MaxError time.Duration
	// Timeout bounds one run of chronyc; default 2 s.
	Timeout time.Duration
}

// Check runs chronyc and judges its answer.
func (c ChronyChecker) Check(ctx context.Context) (ClockStatus, error) {
	if c.MaxError <= 0 {
		return ClockStatus{}, errors.New("chrony checker: MaxError not set")
	}
	path, timeout := c.Path, c.Timeout
	if path == "" {
		path = "chronyc"
	}
	if timeout <= 0 {
		timeout = 2 * time.Second
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	out, err := exec.CommandContext(ctx, path, "-c", "-n", "tracking").Output()
	if err != nil {
		return ClockStatus{}, fmt.Errorf("running %s tracking: %w", path, err)
	}
	tr, err := ParseChronyTracking(out)
	if err != nil {
		return ClockStatus{}, err
	}
	st := ClockStatus{Offset: tr.MaxError(), Source: tr.RefName, CheckedAt: time.Now(), InSync: true}
	switch {
	case tr.LeapStatus == "Not synchronised":
		st.InSync, st.Reason = false, "chrony is not synchronised"
	case tr.Stratum < 1 || tr.Stratum > 15:
		st.InSync, st.Reason = false, fmt.Sprintf("chrony stratum %d", tr.Stratum)
	case st.Offset > c.MaxError:
		st.InSync, st.Reason = false, fmt.Sprintf("clock error bound %v exceeds %v", st.Offset, c.MaxError)
	}
	return st, nil
}
