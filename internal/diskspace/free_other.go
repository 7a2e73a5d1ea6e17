//go:build !linux

package diskspace

// free cannot tell the free space here.
func free(string) (int64, bool) { return 0, false }

// sameFileSystem cannot tell here.
func sameFileSystem(string, string) (same, known bool) { return false, false }
