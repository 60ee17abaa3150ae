package redislimit

import (
	"context"
	"math"
	"testing"
	"time"

	"github.com/pacehttp/pacehttp"
)

func unknown() pacehttp.BucketLimits { return pacehttp.BucketLimits{Remaining: -1} }

// requests returns Limits of the request bucket alone.
func requests(src pacehttp.LimitSource, rate float64, burst int) pacehttp.Limits {
	return pacehttp.Limits{Source: src, Requests: pacehttp.BucketLimits{Rate: rate, Burst: burst, Remaining: -1}, Tokens: unknown()}
}

func newLimiter(t *testing.T, srv *redisServer, opts ...Option) *Limiter {
	t.Helper()
	l := New(srv.client(t), append([]Option{WithHook(nil)}, opts...)...)
	t.Cleanup(func() { l.Close() })
	return l
}

func reserve(t *testing.T, b pacehttp.Budget) time.Duration {
	t.Helper()
	w, _, err := b.Reserve(context.Background(), time.Now(), 1, 0)
	if err != nil {
		t.Fatal(err)
	}
	return w
}

func about(got, want, tolerance time.Duration) bool {
	return got >= want-tolerance && got <= want+tolerance
}

// TestBudgetShared checks the script through two Limiters, as two
// processes would see it: one bucket, one gate.
func TestBudgetShared(t *testing.T) {
	srv := startRedis(t)
	ctx := context.Background()
	a := newLimiter(t, srv).Budget("api.test#0123")
	b := newLimiter(t, srv).Budget("api.test#0123")
	now := time.Now()
	reserve(t, a) // the hash exists: the buckets start full when the limits come

	// 10/s, burst 2: two go at once, the third waits ~100ms, whoever asks.
	if err := a.SetLimits(ctx, now, requests(pacehttp.LimitsLearned, 10, 2)); err != nil {
		t.Fatal(err)
	}
	waits := make([]time.Duration, 4)
	cancels := make([]func(), 4)
	for i, bud := range []pacehttp.Budget{a, b, a, b} {
		w, c, err := bud.Reserve(ctx, now, 1, 0)
		if err != nil {
			t.Fatal(err)
		}
		waits[i], cancels[i] = w, c
	}
	for i, want := range []time.Duration{0, 0, 100 * time.Millisecond, 200 * time.Millisecond} {
		if !about(waits[i], want, 20*time.Millisecond) {
			t.Errorf("wait %d = %v, want about %v", i, waits[i], want)
		}
	}
	// Giving the last one back frees its slot for the next caller.
	cancels[3]()
	if w := reserve(t, a); w > 220*time.Millisecond {
		t.Errorf("after cancel: wait %v, want about 200ms", w)
	}

	// The rate is shared: headers from b set it to 1/s with nothing left,
	// and a waits accordingly.
	if err := b.SetLimits(ctx, now, pacehttp.Limits{Source: pacehttp.LimitsFromHeaders,
		Requests: pacehttp.BucketLimits{Rate: 1, Remaining: 0}, Tokens: unknown()}); err != nil {
		t.Fatal(err)
	}
	if w := reserve(t, a); w < 900*time.Millisecond {
		t.Errorf("after b set 1/s with nothing left: wait %v, want about 1s", w)
	}

	// Tokens: a second bucket, drawn by cost.
	e := newLimiter(t, srv).Budget("tokens#89ab")
	reserve(t, e) // a fleet starting cold gets half the burst; this one started unlimited
	e.SetLimits(ctx, now, pacehttp.Limits{Requests: unknown(), Tokens: pacehttp.BucketLimits{Rate: 1000, Burst: 1000, Remaining: -1}})
	if w, _, _ := e.Reserve(ctx, now, 1, 1000); w > 10*time.Millisecond {
		t.Errorf("a full token bucket: wait %v", w)
	}
	if w, _, _ := e.Reserve(ctx, now, 1, 500); !about(w, 500*time.Millisecond, 50*time.Millisecond) {
		t.Errorf("500 tokens at 1000/s from an empty bucket: wait %v, want about 500ms", w)
	}

	// An infinite rate lifts the limit.
	e.SetLimits(ctx, now, pacehttp.Limits{Requests: unknown(), Tokens: pacehttp.BucketLimits{Rate: math.Inf(1), Remaining: -1}})
	if w, _, _ := e.Reserve(ctx, now, 1, 1e6); w != 0 {
		t.Errorf("no limit: wait %v", w)
	}
}

// TestColdStart: before any limit is known, the fleet sends one request
// and holds the others until the limits come (which wakes them) or half a
// second passes; then, with no limit known still, nothing waits.
func TestColdStart(t *testing.T) {
	srv := startRedis(t)
	ctx := context.Background()
	a := newLimiter(t, srv).Budget("cold#01")
	b := newLimiter(t, srv).Budget("cold#01")
	subscribed(t, a.(*budget).l, b.(*budget).l)
	if w := reserve(t, a); w != 0 {
		t.Fatalf("the first request: wait %v, want 0", w)
	}
	// The process that sent first goes on, as a process alone would (its
	// pacer's own warm-up holds it); the others wait.
	if w := reserve(t, a); w != 0 {
		t.Errorf("the first process's second request: wait %v, want 0", w)
	}
	changed := b.(pacehttp.Watcher).Changed()
	if w := reserve(t, b); !about(w, 500*time.Millisecond, 50*time.Millisecond) {
		t.Errorf("another process's request: wait %v, want about 500ms", w)
	}
	a.SetLimits(ctx, time.Now(), pacehttp.Limits{Source: pacehttp.LimitsFromHeaders,
		Requests: pacehttp.BucketLimits{Rate: 10, Burst: 5, Remaining: 3}, Tokens: unknown()})
	select {
	case <-changed:
	case <-time.After(time.Second):
		t.Fatal("the first answer's limits did not wake the waiters")
	}
	for i, want := range []time.Duration{0, 0, 0, 0, 100 * time.Millisecond} {
		if w := reserve(t, b); !about(w, want, 30*time.Millisecond) {
			t.Errorf("reservation %d under 10/s with 3 left: wait %v, want about %v", i, w, want)
		}
	}

	c := newLimiter(t, srv).Budget("cold#02")
	reserve(t, c)
	time.Sleep(500 * time.Millisecond)
	for range 3 {
		if w := reserve(t, c); w != 0 {
			t.Errorf("no limit known after the warm-up: wait %v, want 0", w)
		}
	}
}

// TestStatedSurvivesLostState flushes Redis under a stated limit: the next
// call restores the limit, and the bucket starts from the caller's latest
// reservation, not full.
func TestStatedSurvivesLostState(t *testing.T) {
	srv := startRedis(t)
	ctx := context.Background()
	b := newLimiter(t, srv).Budget("stated#01")
	b.SetLimits(ctx, time.Now(), requests(pacehttp.LimitsStated, 10, 5))
	for reserve(t, b) == 0 { // the burst (half of it, starting cold)
	}
	if w := reserve(t, b); w < 100*time.Millisecond {
		t.Fatalf("after the burst: wait %v, want 100ms or more", w)
	}
	for _, lose := range []struct {
		name string
		do   func()
	}{
		{"FLUSHALL", func() { srv.client(t).FlushAll(ctx) }},
		{"restart", func() { srv.kill(); srv.restart() }},
	} {
		lose.do()
		// The limit holds, and the debt this process holds (its latest
		// reservation) is where the new bucket starts.
		var w time.Duration
		for deadline := time.Now().Add(3 * time.Second); ; {
			var err error
			w, _, err = b.Reserve(ctx, time.Now(), 1, 0)
			if err == nil || time.Now().After(deadline) {
				break
			}
			time.Sleep(50 * time.Millisecond) // resting after the failure
		}
		if w == 0 {
			t.Errorf("after %s: a reservation went at once: the limit or the debt was forgotten", lose.name)
		}
		w2 := reserve(t, b)
		if d := w2 - w; !about(d, 100*time.Millisecond, 30*time.Millisecond) {
			t.Errorf("after %s: successive waits %v and %v, want 100ms apart (10/s)", lose.name, w, w2)
		}
	}
}

// TestEstimateNeverOverridesStated: one process's estimate, however low,
// leaves the stated rate in force for the fleet.
func TestEstimateNeverOverridesStated(t *testing.T) {
	srv := startRedis(t)
	ctx := context.Background()
	a := newLimiter(t, srv).Budget("est#01")
	b := newLimiter(t, srv).Budget("est#01")
	a.SetLimits(ctx, time.Now(), requests(pacehttp.LimitsStated, 100, 1))
	reserve(t, a)
	b.SetLimits(ctx, time.Now(), requests(pacehttp.LimitsLearned, 2, 1))
	for i := range 3 {
		if w := reserve(t, a); w > 40*time.Millisecond {
			t.Fatalf("reservation %d after b's estimate of 2/s: wait %v, want about %v (100/s)", i, w, time.Duration(i+1)*10*time.Millisecond)
		}
	}
	// b, which states nothing itself, paces at the stated rate too.
	if w := reserve(t, b); w > 50*time.Millisecond {
		t.Errorf("b: wait %v, want the stated 100/s", w)
	}
}

// TestHeadersAreTruth: the server's headers override a stated rate and an
// estimate, in every process.
func TestHeadersAreTruth(t *testing.T) {
	srv := startRedis(t)
	ctx := context.Background()
	a := newLimiter(t, srv).Budget("hdr#01")
	b := newLimiter(t, srv).Budget("hdr#01")
	reserve(t, a) // no limit yet: the buckets start full when one comes
	a.SetLimits(ctx, time.Now(), requests(pacehttp.LimitsStated, 100, 1))
	b.SetLimits(ctx, time.Now(), pacehttp.Limits{Source: pacehttp.LimitsFromHeaders,
		Requests: pacehttp.BucketLimits{Rate: 10, Burst: 1, Remaining: 0}, Tokens: unknown()})
	a.SetLimits(ctx, time.Now(), requests(pacehttp.LimitsLearned, 1000, 1))
	// Remaining 0 may hold 1 (servers round down), then 10/s.
	reserve(t, a)
	if w := reserve(t, a); !about(w, 100*time.Millisecond, 30*time.Millisecond) {
		t.Errorf("a: wait %v, want about 100ms (10/s from the headers)", w)
	}
	// A later answer keeps the rate when it says nothing new of it.
	b.SetLimits(ctx, time.Now(), pacehttp.Limits{Source: pacehttp.LimitsFromHeaders,
		Requests: pacehttp.BucketLimits{Remaining: 5}, Tokens: unknown()})
	if w := reserve(t, a); !about(w, 200*time.Millisecond, 30*time.Millisecond) {
		t.Errorf("a: wait %v, want about 200ms", w)
	}
}

// TestLowestStatedHolds: processes that state different limits share the
// lowest, without voiding each other's reservations on every call.
func TestLowestStatedHolds(t *testing.T) {
	srv := startRedis(t)
	ctx := context.Background()
	a := newLimiter(t, srv).Budget("low#01")
	b := newLimiter(t, srv).Budget("low#01")
	a.SetLimits(ctx, time.Now(), requests(pacehttp.LimitsStated, 20, 1))
	b.SetLimits(ctx, time.Now(), requests(pacehttp.LimitsStated, 10, 1))
	reserve(t, a)
	prev := reserve(t, b)
	for i := range 6 {
		bud := []pacehttp.Budget{a, b}[i%2]
		w := reserve(t, bud)
		if d := w - prev; !about(d, 100*time.Millisecond, 20*time.Millisecond) {
			t.Fatalf("reservation %d: wait %v after %v, want 100ms more (10/s)", i, w, prev)
		}
		prev = w
	}
}

// TestCancelAfterCoolDown: the cancels of reservations a cool-down voided
// hand nothing back. Otherwise the fleet gets, at the gate's opening, the
// units of requests that never went (13 grants in 0.8s where 10 were
// allowed, in the fleet that found it).
func TestCancelAfterCoolDown(t *testing.T) {
	srv := startRedis(t)
	ctx := context.Background()
	b := newLimiter(t, srv).Budget("void#01")
	const rate = 10.0
	b.SetLimits(ctx, time.Now(), requests(pacehttp.LimitsStated, rate, 20))
	now := time.Now()
	b.CoolDown(ctx, now, now.Add(time.Second))
	var cancels []func()
	for range 3 {
		w, c, err := b.Reserve(ctx, time.Now(), 1, 0)
		if err != nil || w < 800*time.Millisecond || c == nil {
			t.Fatalf("behind the gate: Reserve = %v, %v", w, err)
		}
		cancels = append(cancels, c)
	}
	time.Sleep(350 * time.Millisecond)
	const gate = 850 * time.Millisecond
	now = time.Now()
	b.CoolDown(ctx, now, now.Add(gate)) // a later 429: the three are void
	for _, c := range cancels {
		c()
	}
	// The bucket refills from the second cool-down: 8.5 units at the
	// gate, then 10/s.
	const within = 500 * time.Millisecond
	n := 0
	for ; n < 40; n++ {
		w, _, err := b.Reserve(ctx, now, 1, 0)
		if err != nil {
			t.Fatal(err)
		}
		if w > gate+within {
			break
		}
	}
	want := (gate + within).Seconds() * rate
	if float64(n) > want+1 || float64(n) < want-2 {
		t.Errorf("%d reservations within %v of the gate, want about %.1f", n, within, want)
	}
}

// TestCancelOutOfOrder: a reservation given back from the middle of the
// schedule frees nothing at its end, which later reservations hold (when
// each gave its units back, the end of the schedule was granted twice and
// the fleet met 429s: waiters woken by a change cancel in any order). The
// process keeps the slot for its own next reservation instead; the last
// reservation given back returns to Redis, for any process.
func TestCancelOutOfOrder(t *testing.T) {
	srv := startRedis(t)
	ctx := context.Background()
	a := newLimiter(t, srv).Budget("order#01")
	b := newLimiter(t, srv).Budget("order#01")
	reserve(t, a)
	a.SetLimits(ctx, time.Now(), requests(pacehttp.LimitsStated, 10, 1))
	now := time.Now()
	a.Reserve(ctx, now, 1, 0) // the burst
	var cancels []func()
	var waits []time.Duration
	for range 4 {
		w, c, err := a.Reserve(ctx, now, 1, 0)
		if err != nil || c == nil {
			t.Fatalf("Reserve = %v, %v", w, err)
		}
		cancels, waits = append(cancels, c), append(waits, w)
	}
	end := waits[3] + 100*time.Millisecond
	cancels[0]() // the first, 100ms ahead
	w, c, err := b.Reserve(ctx, now, 1, 0)
	if err != nil || !about(w, end, 30*time.Millisecond) {
		t.Fatalf("b, after a gave back the first of 4: wait %v, %v; want about %v (the end is still held)", w, err, end)
	}
	if w := reserve(t, a); !about(w, waits[0], 30*time.Millisecond) {
		t.Errorf("a, after giving back the first of 4: wait %v, want about %v (its slot again)", w, waits[0])
	}
	c() // b's, the last
	if w := reserve(t, a); !about(w, end, 30*time.Millisecond) {
		t.Errorf("a, after b gave back the last: wait %v, want about %v (that slot again)", w, end)
	}
}

// TestKeysShareASlot: every key of a partition has the partition as its
// hash tag, braces in the name included.
func TestKeysShareASlot(t *testing.T) {
	for _, prefix := range []string{DefaultPrefix, "p{x:", "p}"} {
		l := New(nil, WithHook(nil), WithoutWatch(), WithPrefix(prefix))
		for _, name := range []string{"api.test#01", "}odd{", "{}", ""} {
			b := l.Budget(name).(*budget)
			tag := hashTag(b.keys[0])
			for _, k := range b.keys[1:] {
				if hashTag(k) != tag || tag == "" {
					t.Errorf("prefix %q, name %q: keys %q hash on %q and %q", prefix, name, b.keys, tag, hashTag(k))
				}
			}
		}
	}
}

// hashTag returns the part of key Redis Cluster hashes on, "" for the
// whole key.
func hashTag(key string) string {
	for i := 0; i < len(key); i++ {
		if key[i] == '{' {
			for j := i + 1; j < len(key); j++ {
				if key[j] == '}' {
					if j == i+1 {
						return ""
					}
					return key[i+1 : j]
				}
			}
			return ""
		}
	}
	return ""
}
