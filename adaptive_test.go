package pacehttp

import (
	"testing"
	"time"
)

// The refusals of one burst come back together, each of a request that left
// a little after the one before, and before the first refusal was heard:
// they are one sign of the limit. Counting each as news cut the rate once
// per refusal, and over loopback the article's batch took 1.5x its bound.
func TestLearnerOneBurstOfRefusalsIsOneSign(t *testing.T) {
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	const sent, served, rtt, gap = 32, 10, 2 * time.Millisecond, 10 * time.Microsecond
	l := newLearner(t0, 0.1, 0, 0)
	sentAt := func(i int) time.Time { return t0.Add(time.Duration(i) * gap) }
	for i := range sent {
		l.left(sentAt(i))
	}
	for i := range served {
		l.accepted(sentAt(i).Add(rtt), sentAt(i), sent-i)
	}
	heard := sentAt(served).Add(rtt)
	l.refused(heard, sentAt(served), sent-served, false)
	type course struct {
		phase       phase
		since       time.Time
		base, limit float64
	}
	courseOf := func() course { return course{l.phase, l.phaseAt, l.base, l.limit} }
	first := courseOf()
	for i := served + 1; i < sent; i++ {
		l.refused(sentAt(i).Add(rtt), sentAt(i), sent-i, false)
		if c := courseOf(); c != first {
			t.Fatalf("refusal %d of the burst changed the learner's course from %+v to %+v", i-served+1, first, c)
		}
	}
}
