package pacehttp

import (
	"context"
	"errors"
	"io"
	"strings"
	"testing"
	"testing/synctest"
	"time"
)

func TestRetryBudget(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s := &script{answers: []answer{status(500)}}
		rt := Chain(s, Retry(WithRetryBudget(0, 2), WithMaxAttempts(10), WithBackoff(time.Millisecond, time.Millisecond)))
		resp, err := rt.RoundTrip(newRequest(t, context.Background(), "GET", nil))
		if err != nil {
			t.Fatal(err)
		}
		readAll(t, resp)
		// The floor allows two unhinted retries in this second, then stops.
		if s.calls != 3 {
			t.Errorf("%d attempts, want 3 (one plus the floor of 2 retries)", s.calls)
		}
	})
}

func TestHintedRetriesIgnoreBudget(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s := &script{answers: []answer{status(429, "Retry-After", "1")}}
		rt := Chain(s, Retry(WithRetryBudget(0, 0), WithMaxAttempts(4)))
		resp, err := rt.RoundTrip(newRequest(t, context.Background(), "GET", nil))
		if err != nil {
			t.Fatal(err)
		}
		readAll(t, resp)
		if s.calls != 4 {
			t.Errorf("%d attempts, want 4", s.calls)
		}
	})
}

func TestRefusedRetryDoesNotSpendBudget(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s := &script{answers: []answer{status(503), status(503), status(200)}}
		// A floor of one unhinted retry a second and no share of requests:
		// one retry to spend in this instant.
		rt := Chain(s, Retry(WithRetryBudget(0, 1), WithBackoffFunc(func(int) time.Duration { return 10 * time.Millisecond })))
		ctx, cancel := context.WithTimeout(context.Background(), time.Millisecond)
		defer cancel()
		resp, err := rt.RoundTrip(newRequest(t, ctx, "GET", nil)) // its retry would pass the deadline
		if err != nil {
			t.Fatal(err)
		}
		readAll(t, resp)
		resp, err = rt.RoundTrip(newRequest(t, context.Background(), "GET", nil))
		if err != nil {
			t.Fatal(err)
		}
		readAll(t, resp)
		if resp.StatusCode != 200 || s.calls != 3 {
			t.Errorf("second request: %d after %d calls in all, want 200 after 3: the refused retry spent the budget", resp.StatusCode, s.calls)
		}
	})
}

// TestFailedGetBodyDoesNotSpendBudget: a retry given up because GetBody
// failed spends no budget; the budget is drawn on last.
func TestFailedGetBodyDoesNotSpendBudget(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s := &script{answers: []answer{status(503), status(503), status(200)}}
		// One unhinted retry to spend in this instant.
		rt := Chain(s, Retry(WithRetryBudget(0, 1), WithBackoffFunc(func(int) time.Duration { return 10 * time.Millisecond })))
		req := newRequest(t, context.Background(), "PUT", strings.NewReader("x"))
		req.GetBody = func() (io.ReadCloser, error) { return nil, errors.New("gone") }
		resp, err := rt.RoundTrip(req)
		if err != nil {
			t.Fatal(err)
		}
		readAll(t, resp)
		resp, err = rt.RoundTrip(newRequest(t, context.Background(), "PUT", strings.NewReader("x")))
		if err != nil {
			t.Fatal(err)
		}
		readAll(t, resp)
		if resp.StatusCode != 200 || s.calls != 3 {
			t.Errorf("second request: %d after %d calls in all, want 200 after 3: the failed GetBody spent the budget", resp.StatusCode, s.calls)
		}
	})
}
