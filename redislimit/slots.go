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
//
// Redis counted a kept slot as sent when it granted it (see Counter); one
// that goes unused (it passes, or is void) is given back to the count with
// the process's next reservation (dropped).
type slots struct {
	mu      sync.Mutex
	gen     int64
	kept    []slot
	dropped []slot
}

// maxSlots bounds the slots kept; a process holds at most one per waiter.
const maxSlots = 256

// sync records the generation Redis reported last; a new one voids the
// slots kept.
func (s *slots) sync(gen int64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if gen != s.gen {
		s.drop(s.kept...)
		s.gen, s.kept = gen, s.kept[:0]
	}
}

// drop adds unused slots to those the count must lose. s.mu must be held.
func (s *slots) drop(sls ...slot) {
	if room := maxSlots - len(s.dropped); len(sls) > room {
		sls = sls[:max(room, 0)]
	}
	s.dropped = append(s.dropped, sls...)
}

// unused returns the slots dropped since the last call.
func (s *slots) unused() []slot {
	s.mu.Lock()
	defer s.mu.Unlock()
	d := s.dropped
	s.dropped = nil
	return d
}

func (s *slots) keep(sl slot) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if sl.gen == s.gen && len(s.kept) < maxSlots {
		s.kept = append(s.kept, sl)
	} else {
		s.drop(sl)
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
			s.drop(sl)
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
