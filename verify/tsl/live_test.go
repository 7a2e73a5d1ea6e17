package tsl

import (
	"context"
	"errors"
	"log/slog"
	"testing"
	"time"
)

// A failed reload keeps the lists held; a good one replaces them; Refresh
// reloads until its context ends.
func TestLiveReloadAndRefresh(t *testing.T) {
	var l Live
	logger := slog.New(slog.DiscardHandler)
	first := &Trust{}
	l.Reload(context.Background(), func(context.Context) (*Trust, []string, error) { return first, []string{"w"}, nil }, logger)
	if l.Current() != first {
		t.Fatal("a good load is not current")
	}
	l.Reload(context.Background(), func(context.Context) (*Trust, []string, error) { return nil, nil, errors.New("unreachable") }, logger)
	if l.Current() != first {
		t.Fatal("a failed load replaced the lists")
	}
	ctx, cancel := context.WithCancel(context.Background())
	loads := make(chan struct{}, 10)
	second := &Trust{}
	done := make(chan struct{})
	go func() {
		defer close(done)
		l.Refresh(ctx, time.Millisecond, func(context.Context) (*Trust, []string, error) {
			loads <- struct{}{}
			return second, nil, nil
		}, logger)
	}()
	<-loads
	<-loads
	cancel()
	<-done
	if l.Current() != second {
		t.Fatal("Refresh did not replace the lists")
	}
}
