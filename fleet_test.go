package pacehttp

import (
	"context"
	"testing"
	"time"
)

// fleetBudget is a FleetBudget over a local budget, whose fleet is the
// test: it sets the latest refusal and reads what was reported.
type fleetBudget struct {
	Budget
	latest   time.Time
	rate     float64
	reported []time.Time
}

func (f *fleetBudget) Refused(_ context.Context, _, sent time.Time) error {
	f.reported = append(f.reported, sent)
	return nil
}
func (f *fleetBudget) LatestRefusal() time.Time { return f.latest }
func (f *fleetBudget) FleetRate() float64       { return f.rate }

// TestHearFleet: a refusal another process met is the learner's news, as
// one of its own would be, once; it leaves the learner's count of its own
// sends as it was.
func TestHearFleet(t *testing.T) {
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	fb := &fleetBudget{Budget: newLocalBudget()}
	p := &pacer{cfg: newConfig[Option](nil)}
	p.limiter = fixedLimiter{fb}
	part := p.newPartition("fleet", t0)
	// Own sends, 20 a second for a second, all accepted.
	for i := range 20 {
		at := t0.Add(time.Duration(i) * 50 * time.Millisecond)
		part.learn.left(at)
		part.learn.accepted(at.Add(time.Millisecond), at, 1)
	}
	now := t0.Add(time.Second)
	own, _ := part.learn.sends.count(t0.Add(-time.Second), now)

	part.mu.Lock()
	defer part.mu.Unlock()
	part.hearFleet(now) // nothing refused yet
	if !part.learn.refusedAt.IsZero() {
		t.Fatalf("no refusal in the fleet, but the learner marked one at %v", part.learn.refusedAt)
	}
	sent := t0.Add(955 * time.Millisecond) // in the slot of an own send
	fb.latest = sent
	part.hearFleet(now)
	if !part.learn.refusedAt.Equal(sent) || part.learn.phase != searching {
		t.Errorf("after a refusal elsewhere: refused at %v, phase %v; want %v, searching", part.learn.refusedAt, part.learn.phase, sent)
	}
	if n, _ := part.learn.sends.count(t0.Add(-time.Second), now); n != own {
		t.Errorf("own sends counted %d after a refusal elsewhere, want %d as before", n, own)
	}
	// Heard again, it is no news; a refusal of a request sent before the
	// learner heard of the last one is part of it.
	phaseAt := part.learn.phaseAt
	part.hearFleet(now.Add(10 * time.Millisecond))
	fb.latest = now.Add(-time.Millisecond)
	part.hearFleet(now.Add(10 * time.Millisecond))
	if !part.learn.refusedAt.Equal(sent) || part.learn.phaseAt != phaseAt {
		t.Errorf("the same refusal, or its straggler, taught the learner again: refused at %v", part.learn.refusedAt)
	}
}

// TestRefillRate: in a fleet that learns together, the server's bucket
// refills at the fleet's rate, not at this process's share.
func TestRefillRate(t *testing.T) {
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	fb := &fleetBudget{Budget: newLocalBudget(), rate: 100}
	p := &pacer{cfg: newConfig[Option]([]Option{WithRate(5, 1)})}
	p.limiter = fixedLimiter{fb}
	part := p.newPartition("fleet", t0)
	if r := part.refillRate(t0); r != 100 {
		t.Errorf("refill rate %v, want the fleet's 100", r)
	}
	fb.rate = 0 // unknown, or other limits in force
	if r := part.refillRate(t0); r != 5 {
		t.Errorf("refill rate %v, want the learner's 5", r)
	}
}

type fixedLimiter struct{ b Budget }

func (l fixedLimiter) Budget(string) Budget { return l.b }
