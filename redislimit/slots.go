package redislimit

import (
	"sync"
	"time"
)

// A slot is a reservation Redis granted that its holder gave back before
// its instant, and that Redis could not take back: reservations made
// after it hold the end of the schedule (see give in script.go). The
// process keeps it for its next reservation of the same size, so that a
// waiter that is woken and reserves again (the pacer wakes its waiters at
// each change of the rate it reads from headers) takes its place again
// rather than leave a hole in the fleet's schedule.
type slot struct {
	at               time.Time // on the callers' clock
	requests, tokens int
	gen              int64 // the generation it was granted in
}

// slots are the slots a budget keeps. A slot is good until its instant
// while its generation is the last Redis reported, and no later one was
// announced.
type slots struct {
	mu   sync.Mutex
	gen  int64
	kept []slot
}

// maxSlots bounds the slots kept; a process holds at most one per waiter.
const maxSlots = 256

// sync records the generation Redis reported last; a new one voids the
// slots kept.
func (s *slots) sync(gen int64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if gen != s.gen {
		s.gen, s.kept = gen, s.kept[:0]
	}
}

func (s *slots) keep(sl slot) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if sl.gen == s.gen && len(s.kept) < maxSlots {
		s.kept = append(s.kept, sl)
	}
}

// take returns the earliest good slot of the size asked at or after now;
// announced is the latest generation announced.
func (s *slots) take(now time.Time, requests, tokens int, announced int64) (slot, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	best := -1
	live := s.kept[:0]
	for _, sl := range s.kept {
		if sl.at.Before(now) || sl.gen != s.gen || sl.gen < announced {
			continue
		}
		live = append(live, sl)
		if sl.requests == requests && sl.tokens == tokens && (best < 0 || sl.at.Before(live[best].at)) {
			best = len(live) - 1
		}
	}
	s.kept = live
	if best < 0 {
		return slot{}, false
	}
	sl := s.kept[best]
	s.kept = append(s.kept[:best], s.kept[best+1:]...)
	return sl, true
}
