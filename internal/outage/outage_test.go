package outage

import (
	"errors"
	"fmt"
	"os"
	"syscall"
	"testing"
)

func TestMark(t *testing.T) {
	base := errors.New("connection refused")
	err := Mark(fmt.Errorf("store: reading: %w", base))
	if !Is(err) || !errors.Is(err, base) {
		t.Fatalf("Mark lost the chain or the mark: %v", err)
	}
	if err.Error() != "store: reading: connection refused" {
		t.Errorf("message = %q, want the wrapped error's", err.Error())
	}
	if Is(base) || Is(nil) || Mark(nil) != nil {
		t.Error("an unmarked or nil error counts as an outage")
	}
	if again := Mark(err); again != err {
		t.Error("marking twice wraps twice")
	}
	if !Is(fmt.Errorf("issuing: %w", err)) {
		t.Error("the mark does not survive wrapping")
	}
}

func TestIsStorage(t *testing.T) {
	for _, errno := range []syscall.Errno{syscall.ENOSPC, syscall.EDQUOT, syscall.EROFS, syscall.EIO} {
		err := fmt.Errorf("writing: %w", &os.PathError{Op: "write", Path: "/x", Err: errno})
		if !IsStorage(err) || !Is(MarkStorage(err)) {
			t.Errorf("%v: not a storage outage", errno)
		}
	}
	other := &os.PathError{Op: "open", Path: "/x", Err: syscall.ENOENT}
	if IsStorage(other) || Is(MarkStorage(other)) || MarkStorage(nil) != nil {
		t.Error("a missing file counts as a storage outage")
	}
}
