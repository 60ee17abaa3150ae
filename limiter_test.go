package pacehttp

import (
	"context"
	"errors"
	"net/http"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	pacetest "github.com/pacehttp/pacehttp/httptest_helpers"
)

// failingLimiter refuses every reservation, as a shared store that is out
// of reach does when it fails closed.
type failingLimiter struct{ err error }

func (l failingLimiter) Budget(string) Budget { return failingBudget(l) }

type failingBudget failingLimiter

func (b failingBudget) Reserve(context.Context, time.Time, int, int) (time.Duration, func(), error) {
	return 0, nil, b.err
}
func (failingBudget) CoolDown(context.Context, time.Time, time.Time) error { return nil }
func (failingBudget) SetLimits(context.Context, time.Time, Limits) error   { return nil }

func TestLimiterErrorIsFinal(t *testing.T) {
	api := pacetest.NewAPI(pacetest.Config{})
	defer api.Close()
	errDown := errors.New("store down")
	count, attempts := eventCounter(EventAttempt)
	giveUp, giveUps := eventCounter(EventGiveUp)
	rt := New(api.Transport(), WithLimiter(failingLimiter{errDown}), count, giveUp)
	req, _ := http.NewRequest("GET", api.URL(), nil)
	_, err := rt.RoundTrip(req)
	if !errors.Is(err, errDown) {
		t.Fatalf("err = %v, want one wrapping the Limiter's", err)
	}
	// Never sent: no attempt, one give-up, and no retry.
	if n, g := attempts.Load(), giveUps.Load(); n != 0 || g != 1 {
		t.Errorf("%d attempts and %d give-ups, want 0 and 1: a Limiter's refusal is not sent, nor retried", n, g)
	}
	if n := api.Stats().Requests; n != 0 {
		t.Errorf("the API saw %d requests, want 0", n)
	}
}

// watchedBudget is a local budget that another party may change: poke
// plays that party.
type watchedBudget struct {
	Budget
	reserves atomic.Int32
	mu       sync.Mutex
	ch       chan struct{}
}

func (b *watchedBudget) Reserve(ctx context.Context, now time.Time, requests, tokens int) (time.Duration, func(), error) {
	b.reserves.Add(1)
	return b.Budget.Reserve(ctx, now, requests, tokens)
}

func (b *watchedBudget) Changed() <-chan struct{} {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.ch
}

func (b *watchedBudget) poke() {
	b.mu.Lock()
	defer b.mu.Unlock()
	close(b.ch)
	b.ch = make(chan struct{})
}

type watchedLimiter struct{ b *watchedBudget }

func (l watchedLimiter) Budget(string) Budget { return l.b }

func TestWatcherWakesWaiters(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		api := pacetest.NewAPI(pacetest.Config{})
		b := &watchedBudget{Budget: newLocalBudget(), ch: make(chan struct{})}
		rt := Pace(WithRate(1, 1), WithLimiter(watchedLimiter{b}))(api.Transport())
		get := func() {
			req, _ := http.NewRequest("GET", "http://api.test/", nil)
			resp, err := rt.RoundTrip(req)
			if err != nil {
				t.Error(err)
				return
			}
			resp.Body.Close()
		}
		get() // takes the one unit
		done := make(chan struct{})
		go func() { get(); close(done) }() // waits a second
		time.Sleep(100 * time.Millisecond)
		synctest.Wait()
		if n := b.reserves.Load(); n != 2 {
			t.Fatalf("%d reservations before the change, want 2", n)
		}
		b.poke()
		synctest.Wait()
		if n := b.reserves.Load(); n != 3 {
			t.Errorf("%d reservations after a change elsewhere, want 3: the waiter reserves again", n)
		}
		<-done
	})
}
