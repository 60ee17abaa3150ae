package redislimit

import (
	"context"
	"testing"
	"time"

	"github.com/pacehttp/pacehttp"
)

func subscribed(t *testing.T, ls ...*Limiter) {
	t.Helper()
	for _, l := range ls {
		select {
		case <-l.subscribed:
		case <-time.After(3 * time.Second):
			t.Fatal("the listener did not subscribe")
		}
	}
}

// TestWatch: a cool-down set by one process wakes the waiters of another,
// not its own (the pacer woke those already), through a restart of Redis
// too.
func TestWatch(t *testing.T) {
	srv := startRedis(t)
	ctx := context.Background()
	lc, ld := newLimiter(t, srv, WithRetryAfter(50*time.Millisecond)), newLimiter(t, srv, WithRetryAfter(50*time.Millisecond))
	subscribed(t, lc, ld)
	c, d := lc.Budget("watch#01"), ld.Budget("watch#01")
	for round := range 2 {
		cChanged, dChanged := c.(pacehttp.Watcher).Changed(), d.(pacehttp.Watcher).Changed()
		now := time.Now()
		if err := c.CoolDown(ctx, now, now.Add(2*time.Second)); err != nil {
			t.Fatal(err)
		}
		if w := reserve(t, d); !about(w, 2*time.Second, 100*time.Millisecond) {
			t.Errorf("round %d: behind a 2s gate: wait %v, want about 2s", round, w)
		}
		select {
		case <-dChanged:
		case <-time.After(time.Second):
			t.Errorf("round %d: a cool-down elsewhere did not wake the waiters", round)
		}
		select {
		case <-cChanged:
			t.Errorf("round %d: a cool-down of its own woke the waiters through Redis", round)
		default:
		}
		if round == 0 {
			srv.kill()
			srv.restart()
			// The listeners find the new server and subscribe again.
			deadline := time.Now().Add(3 * time.Second)
			for time.Now().Before(deadline) {
				n, _ := srv.client(t).PubSubNumSub(ctx, DefaultPrefix+"changes").Result()
				if n[DefaultPrefix+"changes"] == 2 {
					break
				}
				time.Sleep(20 * time.Millisecond)
			}
		}
	}
}
