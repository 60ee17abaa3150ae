package pacehttp

import (
	"context"
	"time"
)

// A FleetBudget is a Budget that a fleet of processes shares, and through
// which they learn a limit together when no header states it and no rate is
// stated (WithRate): a Budget kept in Redis, say.
//
// Each process's pacer learns from its own answers, and counts only its own
// requests: what it learns is its share of the limit. Two things make the
// fleet learn as one pacer would:
//
//   - every refusal is every process's news. The pacer reports each 429 it
//     meets (Refused), and learns from the latest refusal anywhere in the
//     fleet (LatestRefusal) as from its own, measuring how much of the
//     limit it got since the one before;
//   - the learned Limits a pacer sets (LimitsLearned) are its share: the
//     budget runs at the sum of the shares of the processes that use it.
//
// The shared cool-down (CoolDown) already holds every process after a
// refusal; a FleetBudget adds the learning.
type FleetBudget interface {
	Budget

	// Refused records that the server refused a request sent at sent, a
	// limit's refusal the pacer learned from. Best effort: a refusal lost
	// only leaves the other processes to learn of the limit later.
	Refused(ctx context.Context, now, sent time.Time) error

	// LatestRefusal returns when the latest request refused anywhere in
	// the fleet, as far as this process knows, was sent, on this process's
	// clock; zero for none. It is called on the pacer's request path and
	// must be fast: no I/O.
	LatestRefusal() time.Time

	// FleetRate returns the request rate the fleet's learned limits
	// allow, the sum of the shares, as last known; 0 when unknown, or when
	// other limits (headers, a stated rate) are in force. The server's
	// bucket refills at the fleet's rate, not at one process's share: the
	// gate's first probe after a refusal waits that refill. It is called
	// on the pacer's answer path and must be fast: no I/O.
	FleetRate() float64
}

// refillRate returns the rate the server's bucket is thought to refill at:
// the learner's, or in a fleet learning together the fleet's. mu must be
// held.
func (part *partition) refillRate(now time.Time) float64 {
	if fb, ok := part.budget.(FleetBudget); ok {
		if r := fb.FleetRate(); r > 0 {
			return r
		}
	}
	return part.learn.rate(now)
}

// hearFleet teaches the learner of a refusal another process of part's fleet
// met, if there is news. mu must be held.
func (part *partition) hearFleet(now time.Time) {
	fb, ok := part.budget.(FleetBudget)
	if !ok {
		return
	}
	sent := fb.LatestRefusal()
	if !sent.After(part.learn.refusedAt) || part.learn.straggler(sent) || sent.After(now) {
		return // known already, or part of the refusal known
	}
	part.learn.fleetRefused(now, sent)
}

// fleetRefused records that another process of the fleet had a request
// refused that it sent at sent: the learner measures its own share since the
// refusal before, as at one of its own. The refused request was not one of
// its sends, which refused would count off.
func (l *learner) fleetRefused(now, sent time.Time) {
	l.sends.add(sent, 1)
	// No level: a refusal elsewhere says nothing of this process's
	// requests in flight, and shows a rate.
	l.refused(now, sent, 0, false)
}

// reportRefusal tells part's fleet, if it has one, that a request sent at
// sent was refused.
func (part *partition) reportRefusal(ctx context.Context, now, sent time.Time) {
	if fb, ok := part.budget.(FleetBudget); ok {
		fb.Refused(ctx, now, sent)
	}
}
