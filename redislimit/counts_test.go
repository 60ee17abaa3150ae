package redislimit

import (
	"context"
	"testing"
	"time"

	"github.com/pacehttp/pacehttp"
)

// TestCounts: two processes' sends and one's refusals, read by a third,
// slot by slot; a reservation given back is not counted as sent.
func TestCounts(t *testing.T) {
	srv := startRedis(t)
	ctx := context.Background()
	a := newLimiter(t, srv).Budget("counts#01")
	b := newLimiter(t, srv).Budget("counts#01")
	c := newLimiter(t, srv).Budget("counts#01").(Counter)
	a.SetLimits(ctx, time.Now(), requests(pacehttp.LimitsStated, 50, 5))
	start := time.Now()
	var cancels []func()
	for i := range 20 {
		_, cancel, err := []pacehttp.Budget{a, b}[i%2].Reserve(ctx, time.Now(), 1, 0)
		if err != nil {
			t.Fatal(err)
		}
		if cancel != nil {
			cancels = append(cancels, cancel)
		}
	}
	// 5 at once, then 50/s: the last granted 300ms ahead. Two given back.
	cancels[len(cancels)-1]()
	cancels[len(cancels)-2]()
	a.(Counter).Refused(ctx, time.Now(), start)
	a.(Counter).Refused(ctx, time.Now(), start.Add(100*time.Millisecond))
	counts, err := c.Counts(ctx, time.Now(), start.Add(-time.Second), start.Add(time.Second))
	if err != nil {
		t.Fatal(err)
	}
	sent, refused := counts.Between(start.Add(-time.Second), start.Add(time.Second))
	if sent != 18 || refused != 2 {
		t.Errorf("counted %d sent, %d refused; want 18 and 2\n%+v", sent, refused, counts)
	}
	// The sends fall in the slots of the instants they were granted for,
	// over 300ms: a burst of 5 and 5 per tenth of a second at most.
	busy := 0
	for i, n := range counts.Sent {
		if n > 0 {
			busy++
		}
		if n > 11 {
			t.Errorf("slot %d: %d sends, more than 50/s with a burst of 5 allow", i, n)
		}
	}
	if busy < 3 {
		t.Errorf("sends in %d slots, want them spread over 300ms: %v", busy, counts.Sent)
	}
}

// TestCountsKeptSlots: a slot the process kept and never used, and the
// reservations a cool-down voided, do not count as sent.
//
// Its reservations are a second apart and its calls may take seconds, so
// that a loaded machine changes nothing: a call that timed out would fail
// open and leave the counts unread, and a reservation whose instant passed
// before it was given back would count as sent.
func TestCountsKeptSlots(t *testing.T) {
	srv := startRedis(t)
	ctx := context.Background()
	l := newLimiter(t, srv, WithTimeout(10*time.Second))
	a := l.Budget("kept#01")
	reserve(t, a) // the hash exists: the bucket starts full when the limits come
	a.SetLimits(ctx, time.Now(), requests(pacehttp.LimitsStated, 1, 1))
	start := time.Now()
	var cancels []func()
	for range 5 {
		_, c, err := a.Reserve(ctx, time.Now(), 1, 0)
		if err != nil {
			t.Fatal(err)
		}
		if c != nil {
			cancels = append(cancels, c)
		}
	}
	if len(cancels) != 4 {
		t.Fatalf("%d reservations wait, want 4 (burst 1)", len(cancels))
	}
	cancels[0]() // mid-schedule: kept
	if err := a.CoolDown(ctx, time.Now(), time.Now().Add(time.Second)); err != nil {
		t.Fatal(err)
	}
	for _, c := range cancels[1:] {
		c() // void
	}
	reserve(t, a) // reports the kept slot, void now
	if n := l.health.began.Load(); n != 0 {
		t.Fatalf("Redis out of reach %d times: the counts are not the script's", n)
	}
	from, to := start.Add(-time.Second), start.Add(10*time.Second)
	counts, err := a.(Counter).Counts(ctx, time.Now(), from, to)
	if err != nil {
		t.Fatal(err)
	}
	// The first probe, the burst, and the last reservation.
	if sent, _ := counts.Between(from, to); sent != 3 {
		t.Errorf("counted %d sent, want 3: %v", sent, counts.Sent)
	}
}
