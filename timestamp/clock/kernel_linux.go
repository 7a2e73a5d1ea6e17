package clock

import (
	"time"

	"golang.org/x/sys/unix"
)

// readKernel reads the clock state with adjtimex(2) in read-only mode.
func readKernel() (KernelState, error) {
	var tx unix.Timex // modes 0: read only
	state, err := unix.Adjtimex(&tx)
	if err != nil {
		return KernelState{}, err
	}
	return KernelState{
		Unsynchronised: tx.Status&unix.STA_UNSYNC != 0 || state == unix.TIME_ERROR,
		MaxError:       time.Duration(tx.Maxerror) * time.Microsecond,
		EstError:       time.Duration(tx.Esterror) * time.Microsecond,
	}, nil
}
