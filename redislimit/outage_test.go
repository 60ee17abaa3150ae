package redislimit

import (
	"context"
	"errors"
	"net/http"
	"testing"
	"time"

	"github.com/pacehttp/pacehttp"
	pacetest "github.com/pacehttp/pacehttp/httptest_helpers"
	"github.com/redis/go-redis/v9"
)

// TestFailModes kills Redis in the middle of a run and checks each fail
// mode: FailOpen keeps sending, paced in process; FailClosed fails fast
// with an *UnavailableError.
func TestFailModes(t *testing.T) {
	for _, mode := range []FailMode{FailOpen, FailClosed} {
		t.Run(mode.String(), func(t *testing.T) {
			srv := startRedis(t)
			api := pacetest.NewAPI(pacetest.Config{Rate: 50, Burst: 5, Dialect: pacetest.OpenAI})
			defer api.Close()
			var rec recorder
			lim := newLimiter(t, srv, WithFailMode(mode), WithTimeout(50*time.Millisecond), WithHook(rec.hook))
			client := &http.Client{Transport: pacehttp.New(nil, pacehttp.WithLimiter(lim))}
			defer client.CloseIdleConnections()
			get := func() (time.Duration, error) {
				start := time.Now()
				resp, err := client.Get(api.URL())
				if err == nil {
					resp.Body.Close()
					if resp.StatusCode != 200 {
						err = errors.New(resp.Status)
					}
				}
				return time.Since(start), err
			}
			for i := range 10 {
				if _, err := get(); err != nil {
					t.Fatalf("request %d with Redis up: %v", i, err)
				}
			}
			srv.kill()
			for i := range 20 {
				d, err := get()
				switch mode {
				case FailOpen:
					if err != nil {
						t.Fatalf("request %d after Redis died: %v", i, err)
					}
				case FailClosed:
					if _, ok := errors.AsType[*UnavailableError](err); !ok {
						t.Fatalf("request %d after Redis died: error %v, want an *UnavailableError", i, err)
					}
					if d > 500*time.Millisecond {
						t.Errorf("request %d took %v to fail", i, d)
					}
				}
			}
			if n := len(rec.of(pacehttp.EventStoreDown)); n != 1 {
				t.Errorf("outage reported %d times, want once", n)
			}
		})
	}
}

// TestBounded runs every entry point against each way Redis can fail to
// answer: none may take much longer than the timeout, New and Close
// included.
func TestBounded(t *testing.T) {
	const timeout = 100 * time.Millisecond
	const slack = 250 * time.Millisecond // a loaded machine's scheduling
	faults := []struct {
		name  string
		setUp func(t testing.TB) string // returns the address to use
	}{
		{"silent", silentServer},
		{"refused", refusedAddr},
		{"stopped", func(t testing.TB) string {
			srv := startRedis(t)
			srv.stop()
			t.Cleanup(srv.cont)
			return srv.addr
		}},
		{"sleeping", func(t testing.TB) string {
			srv := startRedis(t)
			c := redis.NewClient(&redis.Options{Addr: srv.addr})
			t.Cleanup(func() { c.Close() })
			c.Do(context.Background(), "DEBUG", "SLEEP", "0") // ready
			slept := make(chan struct{})
			go func() { c.Do(context.Background(), "DEBUG", "SLEEP", "2"); close(slept) }()
			t.Cleanup(func() { <-slept })
			time.Sleep(50 * time.Millisecond)
			return srv.addr
		}},
	}
	for _, f := range faults {
		for _, mode := range []FailMode{FailOpen, FailClosed} {
			t.Run(f.name+"/"+mode.String(), func(t *testing.T) {
				addr := f.setUp(t)
				c := redis.NewClient(&redis.Options{Addr: addr, ContextTimeoutEnabled: true})
				defer c.Close()
				ctx := context.Background()
				check := func(what string, fn func()) {
					t.Helper()
					start := time.Now()
					fn()
					if d := time.Since(start); d > timeout+slack {
						t.Errorf("%s took %v, want at most about %v", what, d, timeout)
					}
				}
				var l *Limiter
				check("New", func() { l = New(c, WithHook(nil), WithTimeout(timeout), WithFailMode(mode), WithRetryAfter(0)) })
				b := l.Budget("bounded#01")
				check("SetLimits", func() { b.SetLimits(ctx, time.Now(), requests(pacehttp.LimitsStated, 10, 1)) })
				var cancel func()
				check("Reserve", func() { _, cancel, _ = b.Reserve(ctx, time.Now(), 1, 0) })
				check("Reserve", func() { _, cancel, _ = b.Reserve(ctx, time.Now(), 1, 0) })
				if cancel != nil {
					check("cancel", cancel)
				}
				check("CoolDown", func() { b.CoolDown(ctx, time.Now(), time.Now().Add(time.Second)) })
				time.Sleep(150 * time.Millisecond) // let the listener try
				check("Close", func() { l.Close() })
			})
		}
	}
}

// TestFailOpenShare: failing open, each process paces at its share of the
// stated limit, the limit over the processes Redis counted live.
func TestFailOpenShare(t *testing.T) {
	srv := startRedis(t)
	ctx := context.Background()
	var budgets []pacehttp.Budget
	for range 4 {
		b := newLimiter(t, srv, WithTimeout(50*time.Millisecond)).Budget("share#01")
		b.SetLimits(ctx, time.Now(), requests(pacehttp.LimitsStated, 40, 8))
		budgets = append(budgets, b)
	}
	for _, b := range budgets {
		reserve(t, b) // each counts itself live
	}
	for _, b := range budgets {
		reserve(t, b) // and hears how many are
	}
	srv.kill()
	for i, b := range budgets {
		// 40/s over 4 processes: 10/s each, from an empty bucket (the
		// server's was just used by the fleet).
		now := time.Now()
		var waits []time.Duration
		for range 4 {
			w, _, err := b.Reserve(ctx, now, 1, 0)
			if err != nil {
				t.Fatal(err)
			}
			waits = append(waits, w)
		}
		if waits[0] < 100*time.Millisecond {
			t.Errorf("process %d failing open: first wait %v, want 100ms or more (no burst)", i, waits[0])
		}
		for j := 2; j < len(waits); j++ {
			if d := waits[j] - waits[j-1]; !about(d, 100*time.Millisecond, 10*time.Millisecond) {
				t.Errorf("process %d failing open: waits %v, want them 100ms apart (10/s)", i, waits)
				break
			}
		}
	}
}

// TestFailOpenStaysLocal: what a process does while Redis is out of reach
// (an estimate, a cool-down) stays in the process; back in Redis, the
// process resumes from the fleet's state and drains the bucket it could not
// count in.
func TestFailOpenStaysLocal(t *testing.T) {
	srv := startRedis(t)
	ctx := context.Background()
	rdb := srv.client(t)
	var rec recorder
	b := newLimiter(t, srv, WithTimeout(50*time.Millisecond), WithRetryAfter(100*time.Millisecond), WithHook(rec.hook)).Budget("local#01")
	b.SetLimits(ctx, time.Now(), requests(pacehttp.LimitsLearned, 50, 10))
	reserve(t, b)

	srv.stop()
	b.Reserve(ctx, time.Now(), 1, 0) // the failure
	now := time.Now()
	b.SetLimits(ctx, now, requests(pacehttp.LimitsLearned, 2, 1))
	b.CoolDown(ctx, now, now.Add(5*time.Second))
	if w := reserve(t, b); w < 4*time.Second {
		t.Errorf("failing open after a cool-down: wait %v, want the gate's 5s", w)
	}
	srv.cont()
	for deadline := time.Now().Add(2 * time.Second); len(rec.of(pacehttp.EventStoreUp)) == 0; {
		if time.Now().After(deadline) {
			t.Fatal("Redis back, but the Limiter does not use it")
		}
		b.Reserve(ctx, time.Now(), 1, 0)
		time.Sleep(20 * time.Millisecond)
	}
	h, err := rdb.HGetAll(ctx, b.(*budget).keys[0]).Result()
	if err != nil {
		t.Fatal(err)
	}
	if h["rrate"] != "50" || h["gate"] != "" && h["gate"] != "0" {
		t.Errorf("Redis after the outage: learned rate %q, gate %q; want 50 and no gate", h["rrate"], h["gate"])
	}
}
