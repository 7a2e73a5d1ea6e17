package timestamp

import (
	"context"
	"errors"
	"fmt"
	"math"
	"math/big"
	"sync"
	"time"
)

// SerialAllocator hands out token serial numbers, each one at most once for
// the life of the TSA.
type SerialAllocator interface {
	Next(ctx context.Context) (*big.Int, error)
}

// SerialBlockStore reserves ranges of serial numbers durably. ReserveBlock
// atomically advances the named counter by size and returns the first
// serial of the reserved range [first, first+size); a range is never handed
// out twice, across restarts and instances. The store implements it in a
// transaction.
type SerialBlockStore interface {
	ReserveBlock(ctx context.Context, name string, size int64) (first int64, err error)
}

// DefaultSerialBlockSize is how many serials a BlockAllocator reserves at once.
const DefaultSerialBlockSize = 1000

// BlockAllocator is a SerialAllocator that reserves blocks of serials from a
// SerialBlockStore and hands them out from memory: one store round trip per
// block, none per token. When a quarter of the current block is left it
// reserves the next one in the background, so tokens do not wait for the
// store. A crash loses the rest of the reserved blocks, never reuses a
// serial. It is safe for concurrent use; Close stops the background
// reservation before the store is closed.
type BlockAllocator struct {
	store SerialBlockStore
	name  string
	size  int64

	// bg is the background reservation's context, cancelled by Close;
	// prefetching counts the reservation under way.
	bg          context.Context
	stop        context.CancelFunc
	prefetching sync.WaitGroup

	mu       sync.Mutex
	next     int64 // next serial to hand out
	end      int64 // first serial past the current block
	pending  int64 // first serial of a block reserved ahead, 0 if none
	fetching bool  // a background reservation is running
	closed   bool  // Close was called: no more background reservations
}

// prefetchTimeout bounds a background block reservation.
const prefetchTimeout = 30 * time.Second

// NewBlockAllocator returns an allocator drawing blocks of size serials
// (DefaultSerialBlockSize when size is 0) from the counter name in store.
func NewBlockAllocator(store SerialBlockStore, name string, size int64) (*BlockAllocator, error) {
	if store == nil {
		return nil, errors.New("timestamp: serial block store is nil")
	}
	if name == "" {
		return nil, errors.New("timestamp: serial counter name is empty")
	}
	if size == 0 {
		size = DefaultSerialBlockSize
	}
	if size < 1 || size > 1<<30 {
		return nil, fmt.Errorf("timestamp: serial block size %d out of range", size)
	}
	bg, stop := context.WithCancel(context.Background())
	return &BlockAllocator{store: store, name: name, size: size, bg: bg, stop: stop}, nil
}

// Close cancels a background reservation under way and waits for it to
// end; Next keeps working afterwards but reserves in the foreground only.
// A reservation cut short loses its block at most, never reuses a serial.
func (a *BlockAllocator) Close() {
	a.mu.Lock()
	a.closed = true
	a.mu.Unlock()
	a.stop()
	a.prefetching.Wait()
}

// Next returns the next unused serial, reserving a new block when the
// current one is spent.
func (a *BlockAllocator) Next(ctx context.Context) (*big.Int, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.next >= a.end {
		if a.pending != 0 {
			a.next, a.end, a.pending = a.pending, a.pending+a.size, 0
		} else {
			first, err := a.reserve(ctx)
			if err != nil {
				return nil, err
			}
			a.next, a.end = first, first+a.size
		}
	}
	n := a.next
	a.next++
	if a.size >= 4 && !a.fetching && !a.closed && a.pending == 0 && a.end-a.next <= a.size/4 {
		a.fetching = true
		a.prefetching.Go(a.prefetch)
	}
	return big.NewInt(n), nil
}

func (a *BlockAllocator) reserve(ctx context.Context) (int64, error) {
	first, err := a.store.ReserveBlock(ctx, a.name, a.size)
	if err != nil {
		return 0, fmt.Errorf("reserving a block of serials: %w", err)
	}
	if first < 1 || first > math.MaxInt64-a.size {
		return 0, fmt.Errorf("reserving a block of serials: store returned first serial %d out of range", first)
	}
	return first, nil
}

// prefetch reserves the next block in the background. A failure is not
// reported here: Next reserves synchronously, and reports, when needed.
func (a *BlockAllocator) prefetch() {
	ctx, cancel := context.WithTimeout(a.bg, prefetchTimeout)
	defer cancel()
	first, err := a.reserve(ctx)
	a.mu.Lock()
	defer a.mu.Unlock()
	a.fetching = false
	if err == nil {
		a.pending = first
	}
}
