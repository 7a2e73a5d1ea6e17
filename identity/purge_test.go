package identity

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// countingPurger counts its purges and fails each one.
type countingPurger struct{ n atomic.Int32 }

func (p *countingPurger) Purge(context.Context, time.Time) (int64, error) {
	p.n.Add(1)
	return 0, errors.New("database down")
}

func TestPurgeEvery(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	p := &countingPurger{}
	var logs bytes.Buffer
	done := make(chan struct{})
	go func() {
		PurgeEvery(ctx, p, time.Millisecond, slog.New(slog.NewTextHandler(&logs, nil)))
		close(done)
	}()
	for p.n.Load() < 2 {
		time.Sleep(time.Millisecond)
	}
	cancel()
	<-done
	if !strings.Contains(logs.String(), "purging expired identity state") {
		t.Errorf("failure not logged: %s", logs.String())
	}
}
