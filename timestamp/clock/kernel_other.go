//go:build !linux

package clock

import "errors"

// readKernel is only implemented on Linux.
func readKernel() (KernelState, error) {
	return KernelState{}, errors.New("the kernel clock state is only read on Linux")
}
