package redislimit

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"math"
	"net/http"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/pacehttp/pacehttp"
	pacetest "github.com/pacehttp/pacehttp/httptest_helpers"
)

func unknown() pacehttp.BucketLimits { return pacehttp.BucketLimits{Remaining: -1} }

// TestBudgetShared checks the script through two Limiters, as two
// processes would see it: one bucket, one gate.
func TestBudgetShared(t *testing.T) {
	srv := startRedis(t)
	ctx := context.Background()
	a := newLimiter(t, srv).Budget("api.test#0123")
	b := newLimiter(t, srv).Budget("api.test#0123")
	now := time.Now()

	// Unknown limits: nothing waits.
	for range 3 {
		if w, _, err := a.Reserve(ctx, now, 1, 0); err != nil || w != 0 {
			t.Fatalf("unlimited: Reserve = %v, %v; want 0, nil", w, err)
		}
	}

	// 10/s, burst 2: two go at once, the third waits ~100ms, whoever asks.
	if err := a.SetLimits(ctx, now, pacehttp.Limits{Requests: pacehttp.BucketLimits{Rate: 10, Burst: 2, Remaining: -1}, Tokens: unknown()}); err != nil {
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
		if d := waits[i] - want; d < -20*time.Millisecond || d > 20*time.Millisecond {
			t.Errorf("wait %d = %v, want about %v", i, waits[i], want)
		}
	}
	// Giving the last one back frees its slot for the next caller.
	cancels[3]()
	if w, _, _ := a.Reserve(ctx, now, 1, 0); w > 220*time.Millisecond {
		t.Errorf("after cancel: wait %v, want about 200ms", w)
	}

	// The rate is shared: b lowers it, a waits accordingly.
	if err := b.SetLimits(ctx, now, pacehttp.Limits{Requests: pacehttp.BucketLimits{Rate: 1, Remaining: 0}, Tokens: unknown()}); err != nil {
		t.Fatal(err)
	}
	if w, _, _ := a.Reserve(ctx, now, 1, 0); w < 900*time.Millisecond {
		t.Errorf("after b set 1/s with nothing left: wait %v, want about 1s", w)
	}

	// A cool-down by c holds d too, and wakes d's waiters, not c's.
	c := newLimiter(t, srv).Budget("other#4567")
	d := newLimiter(t, srv).Budget("other#4567")
	time.Sleep(50 * time.Millisecond) // let the subscriptions start
	cChanged, dChanged := c.(pacehttp.Watcher).Changed(), d.(pacehttp.Watcher).Changed()
	if err := c.CoolDown(ctx, now, now.Add(2*time.Second)); err != nil {
		t.Fatal(err)
	}
	if w, _, _ := d.Reserve(ctx, now, 1, 0); w < 1900*time.Millisecond || w > 2100*time.Millisecond {
		t.Errorf("behind a 2s gate: wait %v, want about 2s", w)
	}
	select {
	case <-dChanged:
	case <-time.After(time.Second):
		t.Error("a cool-down elsewhere did not wake the waiters")
	}
	select {
	case <-cChanged:
		t.Error("a cool-down of its own woke the waiters through Redis")
	default:
	}

	// Tokens: a second bucket, drawn by cost.
	e := newLimiter(t, srv).Budget("tokens#89ab")
	e.SetLimits(ctx, now, pacehttp.Limits{Requests: unknown(), Tokens: pacehttp.BucketLimits{Rate: 1000, Burst: 1000, Remaining: -1}})
	if w, _, _ := e.Reserve(ctx, now, 1, 1000); w > 10*time.Millisecond {
		t.Errorf("a full token bucket: wait %v", w)
	}
	if w, _, _ := e.Reserve(ctx, now, 1, 500); w < 450*time.Millisecond || w > 550*time.Millisecond {
		t.Errorf("500 tokens at 1000/s from an empty bucket: wait %v, want about 500ms", w)
	}

	// An infinite rate lifts the limit.
	e.SetLimits(ctx, now, pacehttp.Limits{Requests: unknown(), Tokens: pacehttp.BucketLimits{Rate: math.Inf(1), Remaining: -1}})
	if w, _, _ := e.Reserve(ctx, now, 1, 1e6); w != 0 {
		t.Errorf("no limit: wait %v", w)
	}
}

func newLimiter(t *testing.T, srv *redisServer, opts ...Option) *Limiter {
	l := New(srv.client(t), opts...)
	t.Cleanup(func() { l.Close() })
	return l
}

func TestKeysHoldNoCredential(t *testing.T) {
	srv := startRedis(t)
	api := pacetest.NewAPI(pacetest.Config{Rate: 100, Dialect: pacetest.OpenAI})
	defer api.Close()
	rt := pacehttp.New(nil, pacehttp.WithLimiter(newLimiter(t, srv, WithPrefix("test:"))),
		pacehttp.WithPartitionSecret([]byte("s")))
	req, _ := http.NewRequest("GET", api.URL()+"/v1/x?key=sk-query-secret", nil)
	req.Header.Set("Authorization", "Bearer sk-header-secret")
	resp, err := rt.RoundTrip(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	keys, err := srv.client(t).Keys(context.Background(), "*").Result()
	if err != nil {
		t.Fatal(err)
	}
	if len(keys) != 1 || !strings.HasPrefix(keys[0], "test:127.0.0.1:") {
		t.Fatalf("keys %q, want one under test:127.0.0.1:...", keys)
	}
	if strings.Contains(keys[0], "secret") {
		t.Fatalf("key %q holds a credential", keys[0])
	}
}

// TestRedisDies kills Redis in the middle of a run and checks each fail
// mode: FailOpen keeps sending, paced in process; FailClosed fails fast
// with an *UnavailableError.
func TestRedisDies(t *testing.T) {
	for _, mode := range []FailMode{FailOpen, FailClosed} {
		t.Run(mode.String(), func(t *testing.T) {
			srv := startRedis(t)
			api := pacetest.NewAPI(pacetest.Config{Rate: 50, Burst: 5, Dialect: pacetest.OpenAI})
			defer api.Close()
			var logs bytes.Buffer
			lim := newLimiter(t, srv, WithFailMode(mode), WithTimeout(50*time.Millisecond),
				WithLogger(slog.New(slog.NewTextHandler(&logs, nil))))
			client := &http.Client{Transport: pacehttp.New(nil, pacehttp.WithLimiter(lim))}
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
					var ue *UnavailableError
					if !errors.As(err, &ue) {
						t.Fatalf("request %d after Redis died: error %v, want an *UnavailableError", i, err)
					}
					if d > 500*time.Millisecond {
						t.Errorf("request %d took %v to fail", i, d)
					}
				}
			}
			if n := strings.Count(logs.String(), "redis unavailable"); n != 1 {
				t.Errorf("outage logged %d times, want once:\n%s", n, logs.String())
			}
		})
	}
}

// TestRedisHangs stops Redis without closing its socket: every call must
// end within the timeout.
func TestRedisHangs(t *testing.T) {
	srv := startRedis(t)
	lim := newLimiter(t, srv, WithFailMode(FailClosed), WithTimeout(50*time.Millisecond),
		WithLogger(slog.New(slog.DiscardHandler)))
	bud := lim.Budget("hang#00")
	ctx := context.Background()
	if _, _, err := bud.Reserve(ctx, time.Now(), 1, 0); err != nil {
		t.Fatal(err)
	}
	srv.cmd.Process.Signal(syscall.SIGSTOP)
	defer srv.cmd.Process.Signal(syscall.SIGCONT)
	var wg sync.WaitGroup
	for range 4 {
		wg.Go(func() {
			start := time.Now()
			_, _, err := bud.Reserve(ctx, time.Now(), 1, 0)
			var ue *UnavailableError
			if !errors.As(err, &ue) {
				t.Errorf("Reserve against a stopped Redis: %v, want an *UnavailableError", err)
			}
			if d := time.Since(start); d > 300*time.Millisecond {
				t.Errorf("Reserve took %v", d)
			}
		})
	}
	wg.Wait()
}
