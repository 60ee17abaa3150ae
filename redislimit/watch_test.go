package redislimit

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
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

// listener returns a Limiter, with no client, as its listener leaves it for
// wake: origin is its id.
func listener(origin string) *Limiter {
	return &Limiter{origin: origin, stop: func() {},
		waiters: map[string]chan struct{}{}, gens: map[string]int64{}, refusals: map[string]int64{}}
}

// TestWakeKeyWithSpaces: an announcement names its key in full, whatever
// spaces the key holds (a model "my model" read from a request body, a
// prefix chosen by the user): its waiters are woken, its generation and
// refusal are filed under it, and nothing is filed under a part of it.
func TestWakeKeyWithSpaces(t *testing.T) {
	keys := []string{
		"pacehttp:{api.test#0123/gpt-4o}",
		"pacehttp:{api.test#0123/my model}",
		"pacehttp:{api.test#0123/ two  spaces }",
		"team a:{api.test#0123/my model}",
	}
	type announcement struct {
		name         string
		payload      string // after the key and a space
		woken        bool
		gen          int64
		refusedSince time.Duration // how long before the announcement; 0 for none
	}
	announcements := []announcement{
		{name: "change", payload: "OTHER 7", woken: true, gen: 7},
		{name: "refusal", payload: "OTHER 8 0.250000", woken: true, gen: 8, refusedSince: 250 * time.Millisecond},
		{name: "own change", payload: "SELF 9", gen: 9},
		{name: "hold end", payload: "local 0", woken: true},
	}
	for _, key := range keys {
		for _, a := range announcements {
			t.Run(key+"/"+a.name, func(t *testing.T) {
				l := listener("SELF")
				changed := l.changed(key)
				before := time.Now()
				l.wake(key + " " + a.payload)
				after := time.Now()
				select {
				case <-changed:
					if !a.woken {
						t.Errorf("woken, want not")
					}
				default:
					if a.woken {
						t.Errorf("not woken; generations filed %v", l.gens)
					}
				}
				if diff := cmp.Diff(map[string]int64{key: a.gen}, l.gens); diff != "" {
					t.Errorf("generations (-want +got):\n%s", diff)
				}
				if a.refusedSince == 0 {
					if len(l.refusals) != 0 {
						t.Errorf("refusals %v, want none", l.refusals)
					}
					return
				}
				sent := l.refusals[key]
				lo, hi := before.Add(-a.refusedSince).UnixNano(), after.Add(-a.refusedSince).UnixNano()
				if len(l.refusals) != 1 || sent < lo || sent > hi {
					t.Errorf("refusals %v, want %q sent between %d and %d", l.refusals, key, lo, hi)
				}
			})
		}
	}
}

// TestWakeIgnoresOtherPayloads: a message of another form on the channel
// wakes nothing and files nothing.
func TestWakeIgnoresOtherPayloads(t *testing.T) {
	for _, payload := range []string{"", " ", "key", "key OTHER", "key OTHER x", "key OTHER x 0.5", " OTHER 7", "key  7"} {
		l := listener("SELF")
		changed := l.changed("key")
		l.wake(payload)
		select {
		case <-changed:
			t.Errorf("%q woke the waiters of key", payload)
		default:
		}
		if len(l.gens) != 0 || len(l.refusals) != 0 {
			t.Errorf("%q filed generations %v, refusals %v", payload, l.gens, l.refusals)
		}
	}
}

// FuzzReadAnnouncement: every announcement the script can publish reads
// back as the fields it was made of, whatever the key holds.
func FuzzReadAnnouncement(f *testing.F) {
	f.Add("pacehttp:{api.test#0123/my model}", "OTHER", int64(7), 0.25, true)
	f.Add("pacehttp:{api.test#0123/gpt-4o}", "local", int64(0), 0.0, false)
	f.Add(" 1 2 ", "A", int64(-1), -3.5, true)
	f.Fuzz(func(t *testing.T, key, origin string, gen int64, age float64, refusal bool) {
		if key == "" || origin == "" || strings.Contains(origin, " ") {
			return // not what the script publishes: origins are rand.Text()
		}
		payload := key + " " + origin + " " + strconv.FormatInt(gen, 10)
		var ago string
		if refusal {
			ago = fmt.Sprintf("%.6f", age) // as the script writes it
			payload += " " + ago
		}
		k, o, g, a, ok := readAnnouncement(payload)
		if !ok || k != key || o != origin || g != gen || a != ago {
			t.Errorf("%q read as %q %q %d %q (ok %v)", payload, k, o, g, a, ok)
		}
	})
}

// TestWatchKeyWithSpaces: through Redis, a cool-down of a partition whose
// name holds spaces (a model read from a request body) wakes the waiters of
// another process, which files the new generation under the whole key.
func TestWatchKeyWithSpaces(t *testing.T) {
	srv := startRedis(t)
	ctx := context.Background()
	lc, ld := newLimiter(t, srv, WithPrefix("team a:")), newLimiter(t, srv, WithPrefix("team a:"))
	subscribed(t, lc, ld)
	const name = "api.test#0123/my model"
	c, d := lc.Budget(name), ld.Budget(name).(*budget)
	dChanged := d.Changed()
	now := time.Now()
	if err := c.CoolDown(ctx, now, now.Add(time.Second)); err != nil {
		t.Fatal(err)
	}
	select {
	case <-dChanged:
	case <-time.After(time.Second):
		t.Errorf("a cool-down elsewhere did not wake the waiters of %q", d.keys[0])
	}
	ld.mu.Lock()
	defer ld.mu.Unlock()
	if len(ld.gens) != 1 || ld.gens[d.keys[0]] == 0 {
		t.Errorf("generations filed %v, want one, under %q", ld.gens, d.keys[0])
	}
}
