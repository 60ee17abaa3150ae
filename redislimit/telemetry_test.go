package redislimit

import (
	"context"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/pacehttp/pacehttp"
	"github.com/redis/go-redis/v9"
)

// recorder is a hook that keeps the events it receives.
type recorder struct {
	mu     sync.Mutex
	events []pacehttp.Event
}

func (r *recorder) hook(e pacehttp.Event) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.events = append(r.events, e)
}

func (r *recorder) of(k pacehttp.EventKind) []pacehttp.Event {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []pacehttp.Event
	for _, e := range r.events {
		if e.Kind == k {
			out = append(out, e)
		}
	}
	return out
}

// TestEvents follows one Limiter through calls, an outage and the
// recovery: each call reports its latency, the outage and its end are
// reported once each, and a refusal under FailClosed is reported.
func TestEvents(t *testing.T) {
	srv := startRedis(t)
	var rec recorder
	l := newLimiter(t, srv, WithHook(rec.hook), WithFailMode(FailClosed), WithRetryAfter(100*time.Millisecond))
	b := l.Budget("events#01")
	ctx := context.Background()
	b.SetLimits(ctx, time.Now(), requests(pacehttp.LimitsStated, 100, 10))
	reserve(t, b)
	var calls []pacehttp.Event
	for _, e := range rec.of(pacehttp.EventStoreCall) {
		if e.Partition == "events#01" {
			calls = append(calls, e)
		}
	}
	if len(calls) != 2 {
		t.Fatalf("%d store-call events for 2 calls", len(calls))
	}
	for _, e := range calls[len(calls)-2:] {
		if e.Err != nil || e.Wait <= 0 || e.Partition != "events#01" {
			t.Errorf("store-call event %+v: want a latency, no error, the partition", e)
		}
	}
	if calls[len(calls)-1].Reason != "reserve" {
		t.Errorf("last call's reason %q, want reserve", calls[len(calls)-1].Reason)
	}

	srv.kill()
	for range 3 {
		if _, _, err := b.Reserve(ctx, time.Now(), 1, 0); err == nil {
			t.Fatal("Reserve under FailClosed with Redis dead: no error")
		}
	}
	if n := len(rec.of(pacehttp.EventStoreDown)); n != 1 {
		t.Errorf("%d store-down events, want 1", n)
	}
	if n := len(rec.of(pacehttp.EventStoreRefused)); n != 3 {
		t.Errorf("%d store-refused events, want 3", n)
	}
	srv.restart()
	deadline := time.Now().Add(3 * time.Second)
	for len(rec.of(pacehttp.EventStoreUp)) == 0 && time.Now().Before(deadline) {
		b.Reserve(ctx, time.Now(), 1, 0)
		time.Sleep(20 * time.Millisecond)
	}
	up := rec.of(pacehttp.EventStoreUp)
	if len(up) != 1 || up[0].Wait <= 0 {
		t.Errorf("store-up events %+v, want one with the outage's length", up)
	}
}

// TestRefusedIsNotATimeout: a refused connection is reported as refused,
// through the hook, and go-redis's own messages about it go to the hook,
// not to standard error (that they reach no stream is checked by
// TestFleetFaults, which reads its workers' standard error).
func TestRefusedIsNotATimeout(t *testing.T) {
	var rec recorder
	c := redis.NewClient(&redis.Options{Addr: refusedAddr(t), ContextTimeoutEnabled: true})
	defer c.Close()
	l := New(c, WithHook(rec.hook), WithFailMode(FailClosed))
	defer l.Close()
	_, _, err := l.Budget("refused#01").Reserve(context.Background(), time.Now(), 1, 0)
	if err == nil || !strings.Contains(err.Error(), "connection refused") || strings.Contains(err.Error(), "deadline") {
		t.Errorf("Reserve against a refused address: %v, want the refusal", err)
	}
	downs := rec.of(pacehttp.EventStoreDown)
	if len(downs) != 1 || !strings.Contains(downs[0].Err.Error(), "connection refused") {
		t.Errorf("store-down events %+v, want one that says the connection was refused", downs)
	}
	// go-redis dials in the background, and logs when its attempts are
	// spent.
	for deadline := time.Now().Add(3 * time.Second); len(rec.of(pacehttp.EventStoreLog)) == 0 && time.Now().Before(deadline); {
		time.Sleep(20 * time.Millisecond)
	}
	logs := rec.of(pacehttp.EventStoreLog)
	if len(logs) == 0 || !strings.Contains(logs[0].Err.Error(), "failed to dial") {
		t.Errorf("store-log events %+v, want go-redis's message", logs)
	}
}

// TestTimeoutSaysSo: a call that gets no answer says so, rather than
// "context deadline exceeded".
func TestTimeoutSaysSo(t *testing.T) {
	var rec recorder
	c := redis.NewClient(&redis.Options{Addr: silentServer(t), ContextTimeoutEnabled: true})
	defer c.Close()
	l := New(c, WithHook(rec.hook), WithFailMode(FailClosed), WithTimeout(50*time.Millisecond))
	defer l.Close()
	_, _, err := l.Budget("silent#01").Reserve(context.Background(), time.Now(), 1, 0)
	if err == nil || !strings.Contains(err.Error(), "no answer from redis within 50ms") {
		t.Errorf("Reserve against a silent server: %v", err)
	}
}
