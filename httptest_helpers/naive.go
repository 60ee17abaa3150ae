package pacetest

import (
	"io"
	"math/rand/v2"
	"net/http"
	"strconv"
	"sync"
	"time"
)

// NaiveRetry returns the retry loop of the article pacehttp started from, as
// a RoundTripper over base: each request is tried up to attempts times;
// after a 429, a 5xx or a transport error it sleeps the Retry-After the
// server sent in whole seconds, else 2^n seconds plus up to a second of
// jitter (n counting retries from 0). It neither paces nor shares anything
// between requests. It is the reference a client must never do worse than.
// A nil base means http.DefaultTransport; attempts below 1 mean 1.
//
// Its jitter comes from a fixed seed, so that under testing/synctest a run
// with the same order of events draws the same waits.
func NaiveRetry(base http.RoundTripper, attempts int) http.RoundTripper {
	if base == nil {
		base = http.DefaultTransport
	}
	return &naive{base: base, attempts: max(1, attempts), rng: rand.New(rand.NewPCG(1, 2))}
}

type naive struct {
	base     http.RoundTripper
	attempts int

	mu  sync.Mutex
	rng *rand.Rand
}

func (n *naive) RoundTrip(req *http.Request) (*http.Response, error) {
	try := req
	for retry := 0; ; retry++ {
		resp, err := n.base.RoundTrip(try)
		again := err != nil || resp.StatusCode == http.StatusTooManyRequests || resp.StatusCode >= 500
		if !again || retry+1 >= n.attempts || req.Context().Err() != nil {
			return resp, err
		}
		// Each attempt needs a fresh body; without a way to get one the
		// request cannot be repeated.
		if req.Body != nil && req.Body != http.NoBody {
			if req.GetBody == nil {
				return resp, err
			}
			body, gerr := req.GetBody()
			if gerr != nil {
				return resp, err
			}
			try = req.Clone(req.Context())
			try.Body = body
		}
		wait := n.backoff(retry)
		if resp != nil {
			if s, perr := strconv.Atoi(resp.Header.Get("Retry-After")); perr == nil && s >= 0 {
				wait = time.Duration(s) * time.Second
			}
			_, _ = io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
		}
		if !sleep(req.Context(), wait) {
			if try != req && try.Body != nil {
				try.Body.Close()
			}
			return nil, req.Context().Err()
		}
	}
}

func (n *naive) backoff(retry int) time.Duration {
	n.mu.Lock()
	defer n.mu.Unlock()
	return time.Duration(1<<min(retry, 30))*time.Second + time.Duration(n.rng.Int64N(int64(time.Second)))
}
