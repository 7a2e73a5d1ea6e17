// Package diskspace tells how much room a folder's file system has left,
// for the checks that decide whether a disk that was full has room again
// (the store's /readyz, the token's key generation): a write that fits
// in a few freed bytes proves little when the next real write needs more.
package diskspace

// Free returns the bytes an unprivileged writer may still use on the file
// system holding dir, and whether it could tell (it cannot on systems
// other than Linux, or when dir cannot be read).
func Free(dir string) (int64, bool) { return free(dir) }

// SameFileSystem reports whether folders a and b are on one file system
// (so that what is written to both comes out of one free space), and
// whether it could tell (not on systems other than Linux, nor when either
// cannot be read).
func SameFileSystem(a, b string) (same, known bool) { return sameFileSystem(a, b) }
