package pacehttp

import (
	"context"
	"errors"
	"net/http"
	"testing"
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
