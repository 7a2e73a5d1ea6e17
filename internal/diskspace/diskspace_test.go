package diskspace

import (
	"os"
	"testing"

	"github.com/thiqa/thiqa/internal/testenv"
)

// TestFree: a small disk's free space, as it fills and is freed; a folder
// that does not exist cannot tell.
func TestFree(t *testing.T) {
	disk := testenv.NewSmallDisk(t, 1<<20)
	before, ok := Free(disk.Dir)
	if !ok || before < 900<<10 || before > 1<<20 {
		t.Fatalf("an empty 1 MiB disk has %d bytes free (known %v)", before, ok)
	}
	disk.Fill(t)
	if n, ok := Free(disk.Dir); !ok || n != 0 {
		t.Fatalf("a full disk has %d bytes free (known %v)", n, ok)
	}
	disk.FreeSome(t, 64<<10)
	if n, ok := Free(disk.Dir); !ok || n < 60<<10 || n > 68<<10 {
		t.Fatalf("after 64 KiB were freed: %d bytes free (known %v)", n, ok)
	}
	if _, ok := Free(disk.Dir + string(os.PathSeparator) + "missing"); ok {
		t.Fatal("a missing folder's free space is known")
	}
}
