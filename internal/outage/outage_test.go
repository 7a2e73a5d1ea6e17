package outage

import (
	"errors"
	"fmt"
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
