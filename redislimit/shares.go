package redislimit

import (
	"context"
	"math"
	"time"

	"github.com/pacehttp/pacehttp"
)

// Learning a limit as a fleet: a budget is a pacehttp.FleetBudget.
//
// Each process's pacer learns its own share of a limit no header states:
// what its requests got through between refusals. Every call carries the
// share the pacer last set, and the script runs the fleet's bucket at the
// sum of the live processes' shares (see script.go). Every refusal a pacer
// reports is recorded as the latest (rsent), and every reply carries it, so
// that each pacer learns from it as from one of its own: the processes cut
// and climb back together, as one pacer does, each measuring its own share.
var _ pacehttp.FleetBudget = (*budget)(nil)

// Refused implements Counter and pacehttp.FleetBudget.
func (b *budget) Refused(ctx context.Context, now, sent time.Time) error {
	r, err := b.call(ctx, now, "refused", max(now.Sub(sent), 0).Seconds())
	switch {
	case err != nil:
	case r.result == 1:
		// The latest now: known exactly here, not through the clocks.
		b.rsent.Store(math.Float64bits(r.rsent))
		b.noteRefusal(sent)
	default:
		b.heard(r)
	}
	return err
}

// LatestRefusal implements pacehttp.FleetBudget.
func (b *budget) LatestRefusal() time.Time {
	if ns := max(b.refusal.Load(), b.l.announcedRefusal(b.keys[0])); ns != 0 {
		return time.Unix(0, ns)
	}
	return time.Time{}
}

// heard records the latest refusal a reply tells of, once: its instant,
// on Redis's clock, is the same in every reply until the next refusal, and
// is turned into this process's clock by the reply's own instant, so that
// processes whose clocks differ agree.
func (b *budget) heard(r reply) {
	if r.rsent <= 0 || math.Float64bits(r.rsent) == b.rsent.Load() {
		return
	}
	b.rsent.Store(math.Float64bits(r.rsent))
	ago := time.Duration((r.now - r.rsent) * float64(time.Second))
	b.noteRefusal(time.Now().Add(-ago))
}

// noteRefusal makes sent the latest refusal, unless a later one is known.
func (b *budget) noteRefusal(sent time.Time) {
	n := sent.UnixNano()
	for {
		cur := b.refusal.Load()
		if n <= cur || b.refusal.CompareAndSwap(cur, n) {
			return
		}
	}
}

// FleetRate implements pacehttp.FleetBudget: the request rate in force, as
// Redis last reported it, when it is the sum of the learned shares.
func (b *budget) FleetRate() float64 {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.learnedInForce {
		return b.shared[0].rate
	}
	return 0
}
