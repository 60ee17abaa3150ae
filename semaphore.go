package pacehttp

import (
	"context"
	"sync"
)

// A semaphore admits at most n holders at once and queues the others in
// arrival order: a slot that frees goes to the longest waiter, never to a
// newcomer, so no caller starves behind a stream of later ones.
type semaphore struct {
	mu    sync.Mutex
	n     int
	held  int
	queue []*semWaiter // FIFO; a cancelled waiter is removed
}

type semWaiter struct {
	ready   chan struct{}
	granted bool // set under mu when a slot is handed over
}

func newSemaphore(n int) *semaphore { return &semaphore{n: n} }

// acquire takes a slot, waiting for one in FIFO order. If ctx ends first it
// returns ctx's error and holds no slot.
func (s *semaphore) acquire(ctx context.Context) error {
	s.mu.Lock()
	if s.held < s.n && len(s.queue) == 0 {
		s.held++
		s.mu.Unlock()
		return nil
	}
	w := &semWaiter{ready: make(chan struct{})}
	s.queue = append(s.queue, w)
	s.mu.Unlock()

	select {
	case <-w.ready:
		return nil
	case <-ctx.Done():
		s.mu.Lock()
		if w.granted {
			// The slot arrived as we gave up: pass it on.
			s.mu.Unlock()
			s.release()
			return ctx.Err()
		}
		for i, q := range s.queue {
			if q == w {
				s.queue = append(s.queue[:i], s.queue[i+1:]...)
				break
			}
		}
		s.mu.Unlock()
		return ctx.Err()
	}
}

// release gives a slot back, to the first waiter if there is one.
func (s *semaphore) release() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.queue) > 0 {
		w := s.queue[0]
		s.queue[0] = nil
		s.queue = s.queue[1:]
		w.granted = true
		close(w.ready)
		return
	}
	s.held--
}
