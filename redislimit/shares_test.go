package redislimit

import (
	"context"
	"math"
	"testing"
	"time"

	"github.com/pacehttp/pacehttp"
	"github.com/redis/go-redis/v9"
)

// TestShares: learned limits are each process's share, and the fleet runs
// at their sum while the processes are live; a stated limit still wins.
func TestShares(t *testing.T) {
	srv := startRedis(t)
	ctx := context.Background()
	a := newLimiter(t, srv).Budget("shares#01").(*budget)
	b := newLimiter(t, srv).Budget("shares#01").(*budget)
	now := time.Now()
	a.SetLimits(ctx, now, requests(pacehttp.LimitsLearned, 10, 2))
	b.SetLimits(ctx, now, requests(pacehttp.LimitsLearned, 30, 4))
	if r := b.FleetRate(); r != 40 {
		t.Errorf("shares of 10/s and 30/s: the fleet's rate %v, want 40", r)
	}
	reserve(t, a)
	a.mu.Lock()
	got := a.shared[0]
	a.mu.Unlock()
	if got != (bucket{rate: 40, burst: 4}) {
		t.Errorf("limits in force %+v, want 40/s with the larger burst, 4", got)
	}
	// A share of no limit counts only when no process has a finite one.
	b.SetLimits(ctx, now, pacehttp.Limits{Requests: pacehttp.BucketLimits{Rate: math.Inf(1), Remaining: -1}, Tokens: unknown()})
	if r := b.FleetRate(); r != 10 {
		t.Errorf("shares of 10/s and no limit: the fleet's rate %v, want 10", r)
	}
	// The caller's stated limit wins over every share.
	c := newLimiter(t, srv).Budget("shares#01").(*budget)
	c.SetLimits(ctx, now, requests(pacehttp.LimitsStated, 5, 1))
	if r := c.FleetRate(); r != 0 {
		t.Errorf("under a stated limit, FleetRate %v, want 0", r)
	}
	c.mu.Lock()
	got = c.shared[0]
	c.mu.Unlock()
	if got.rate != 5 {
		t.Errorf("under a stated limit, rate in force %v, want 5", got.rate)
	}
}

// TestSharesOfTheLive: a process that stopped calling drops out of the sum.
func TestSharesOfTheLive(t *testing.T) {
	srv := startRedis(t)
	ctx := context.Background()
	a := newLimiter(t, srv).Budget("live#01").(*budget)
	b := newLimiter(t, srv).Budget("live#01").(*budget)
	now := time.Now()
	a.SetLimits(ctx, now, requests(pacehttp.LimitsLearned, 10, 2))
	b.SetLimits(ctx, now, requests(pacehttp.LimitsLearned, 30, 4))
	// a falls silent: its last reservation, and the live window, pass.
	srv.client(t).ZAdd(ctx, a.keys[1], redis.Z{Score: float64(time.Now().Add(-2 * liveWindow).Unix()), Member: a.l.origin})
	b.SetLimits(ctx, now, requests(pacehttp.LimitsLearned, 30, 4))
	if r := b.FleetRate(); r != 30 {
		t.Errorf("a no longer live: the fleet's rate %v, want b's 30", r)
	}
}

// TestRefusalsShared: a refusal one process reports is the latest refusal
// of every other, on its own clock: at its next call, and at once through
// the announcement when it listens.
func TestRefusalsShared(t *testing.T) {
	srv := startRedis(t)
	ctx := context.Background()
	la, lb, lc := newLimiter(t, srv), newLimiter(t, srv), newLimiter(t, srv, WithoutWatch())
	subscribed(t, la, lb)
	a, b, c := la.Budget("refused#01"), lb.Budget("refused#01").(*budget), lc.Budget("refused#01").(*budget)
	reserve(t, a)
	if !b.LatestRefusal().IsZero() {
		t.Fatalf("no refusal yet, LatestRefusal %v", b.LatestRefusal())
	}
	sent := time.Now().Add(-30 * time.Millisecond)
	if err := a.(pacehttp.FleetBudget).Refused(ctx, time.Now(), sent); err != nil {
		t.Fatal(err)
	}
	if got := a.(pacehttp.FleetBudget).LatestRefusal(); !got.Equal(sent) {
		t.Errorf("the reporter's latest refusal %v, want exactly %v", got, sent)
	}
	deadline := time.Now().Add(time.Second)
	for b.LatestRefusal().IsZero() && time.Now().Before(deadline) {
		time.Sleep(time.Millisecond) // the announcement, without a call
	}
	if d := b.LatestRefusal().Sub(sent).Abs(); d > 20*time.Millisecond {
		t.Errorf("announced: latest refusal %v off the one sent", d)
	}
	if !c.LatestRefusal().IsZero() {
		t.Errorf("a Limiter that does not listen heard of the refusal before any call")
	}
	reserve(t, c)
	if d := c.LatestRefusal().Sub(sent).Abs(); d > 20*time.Millisecond {
		t.Errorf("at the next call: latest refusal %v off the one sent", d)
	}
	// An older refusal is no news.
	a.(pacehttp.FleetBudget).Refused(ctx, time.Now(), sent.Add(-time.Second))
	reserve(t, c)
	if d := c.LatestRefusal().Sub(sent).Abs(); d > 20*time.Millisecond {
		t.Errorf("after an older refusal: latest %v off the latest sent", d)
	}
}
