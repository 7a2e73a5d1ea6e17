//go:build linux

package diskspace

import "golang.org/x/sys/unix"

// free is Free on Linux: statfs's f_bavail blocks of f_bsize bytes
// (root-reserved blocks excluded).
func free(dir string) (int64, bool) {
	var st unix.Statfs_t
	if err := unix.Statfs(dir, &st); err != nil {
		return 0, false
	}
	return int64(st.Bavail) * st.Bsize, true
}
