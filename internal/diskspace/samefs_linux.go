//go:build linux

package diskspace

import "golang.org/x/sys/unix"

// sameFileSystem is SameFileSystem on Linux: the device IDs stat gives.
func sameFileSystem(a, b string) (same, known bool) {
	var sa, sb unix.Stat_t
	if unix.Stat(a, &sa) != nil || unix.Stat(b, &sb) != nil {
		return false, false
	}
	return sa.Dev == sb.Dev, true
}
