package pacehttp

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"syscall"
	"testing"
	"testing/synctest"
	"time"
)

// outcome is what the fake server does with one attempt.
type outcome int

const (
	outOK       outcome = iota // 200
	outBad                     // 400: final
	outThrottle                // 429 with Retry-After 0: unprocessed
	outOverload                // 503: unprocessed
	outFail                    // 500: may have been processed
	outReset                   // body read, then the connection reset
	outRefused                 // dial refused: nothing sent
	numOutcomes
)

var outcomeStatus = map[outcome]int{outOK: 200, outBad: 400, outThrottle: 429, outOverload: 503, outFail: 500}

var (
	errLostReset   = &net.OpError{Op: "read", Net: "tcp", Err: syscall.ECONNRESET}
	errLostRefused = &net.OpError{Op: "dial", Net: "tcp", Err: syscall.ECONNREFUSED}
)

// lostCase is one random request and the server's script for it.
type lostCase struct {
	method      string
	key         bool   // carries an Idempotency-Key
	body        []byte // nil: no body
	getBody     bool   // body built by http.NewRequest from bytes
	limit       int64  // WithMaxBufferedBody
	maxAttempts int
	script      []outcome
}

func (c lostCase) String() string {
	return fmt.Sprintf("%s key=%v body=%d getBody=%v limit=%d attempts=%d script=%v",
		c.method, c.key, len(c.body), c.getBody, c.limit, c.maxAttempts, c.script)
}

func randomLostCase(r *rand.Rand) lostCase {
	methods := []string{http.MethodGet, http.MethodPut, http.MethodDelete, http.MethodPost, http.MethodPatch}
	c := lostCase{
		method:      methods[r.IntN(len(methods))],
		key:         r.IntN(3) == 0,
		getBody:     r.IntN(2) == 0,
		limit:       []int64{0, 16, 64}[r.IntN(3)],
		maxAttempts: 1 + r.IntN(5),
	}
	if r.IntN(4) > 0 {
		c.body = make([]byte, r.IntN(100))
		for i := range c.body {
			c.body[i] = byte(r.Uint32())
		}
	}
	for range c.maxAttempts {
		c.script = append(c.script, outcome(r.IntN(int(numOutcomes))))
	}
	return c
}

// expect is the policy of docs/retry.md applied to c: how many attempts
// reach the server, and the outcome the caller gets.
func (c lostCase) expect() (received int, last outcome) {
	replayable := c.body == nil || c.getBody || int64(len(c.body)) <= c.limit
	idem := c.key
	switch c.method {
	case http.MethodGet, http.MethodPut, http.MethodDelete:
		idem = true
	}
	for n, o := range c.script {
		if o != outRefused {
			received++
		}
		var retryable, unprocessed bool
		switch o {
		case outThrottle, outOverload, outRefused:
			retryable, unprocessed = true, true
		case outFail, outReset:
			retryable = true
		}
		if !retryable || n+1 >= c.maxAttempts || !replayable || !unprocessed && !idem {
			return received, o
		}
	}
	panic("script shorter than the attempts allowed")
}

// TestNothingLost is a randomised property test with a fixed seed: for
// every request, each attempt that reaches the server carries the caller's
// exact body; the caller gets the server's last answer or the transport's
// error, never nothing; the server sees the request exactly as often as
// the policy allows (WithMaxAttempts, the idempotency rule, replayability);
// and the caller's body is closed exactly once.
func TestNothingLost(t *testing.T) {
	const iterations = 3000
	r := rand.New(rand.NewPCG(7, 2026))
	synctest.Test(t, func(t *testing.T) {
		for it := range iterations {
			c := randomLostCase(r)
			if err := runLostCase(c); err != nil {
				t.Fatalf("iteration %d: %s: %v", it, c, err)
			}
		}
	})
}

func runLostCase(c lostCase) error {
	var received [][]byte
	n := 0
	base := roundTripFunc(func(req *http.Request) (*http.Response, error) {
		o := c.script[n]
		n++
		if o == outRefused {
			if req.Body != nil {
				req.Body.Close()
			}
			return nil, errLostRefused
		}
		var b []byte
		if req.Body != nil {
			var err error
			if b, err = io.ReadAll(req.Body); err != nil {
				return nil, err
			}
			req.Body.Close()
		}
		received = append(received, b)
		if o == outReset {
			return nil, errLostReset
		}
		h := http.Header{}
		if o == outThrottle {
			h.Set("Retry-After", "0")
		}
		return &http.Response{StatusCode: outcomeStatus[o], Header: h, Body: io.NopCloser(bytes.NewReader(nil)), Request: req}, nil
	})
	rt := New(base, WithMaxAttempts(c.maxAttempts), WithMaxBufferedBody(c.limit),
		WithBackoffFunc(func(int) time.Duration { return 10 * time.Millisecond }), WithRetryBudget(-1, 0))

	var caller *onceBody
	var req *http.Request
	var err error
	switch {
	case c.body == nil:
		req, err = http.NewRequest(c.method, "http://api.test/", nil)
	case c.getBody:
		req, err = http.NewRequest(c.method, "http://api.test/", bytes.NewReader(c.body))
	default:
		caller = &onceBody{Reader: bytes.NewReader(c.body)}
		req, err = http.NewRequest(c.method, "http://api.test/", caller)
	}
	if err != nil {
		return err
	}
	if c.key {
		req.Header.Set("Idempotency-Key", "k")
	}
	resp, err := rt.RoundTrip(req)

	wantReceived, wantLast := c.expect()
	if len(received) != wantReceived {
		return fmt.Errorf("server received %d attempts, want %d", len(received), wantReceived)
	}
	for i, b := range received {
		if !bytes.Equal(b, c.body) {
			return fmt.Errorf("attempt %d received %d bytes, not the caller's %d", i+1, len(b), len(c.body))
		}
	}
	if n > c.maxAttempts {
		return fmt.Errorf("%d attempts, more than the %d allowed", n, c.maxAttempts)
	}
	switch wantLast {
	case outReset, outRefused:
		want := error(errLostReset)
		if wantLast == outRefused {
			want = errLostRefused
		}
		if resp != nil || !errors.Is(err, want) {
			return fmt.Errorf("got %v, %v; want the error %v", resp, err, want)
		}
	default:
		if err != nil || resp.StatusCode != outcomeStatus[wantLast] {
			return fmt.Errorf("got %v, %v; want the server's %d", resp, err, outcomeStatus[wantLast])
		}
		resp.Body.Close()
	}
	if caller != nil && caller.closes.Load() != 1 {
		return fmt.Errorf("caller's body closed %d times, want 1", caller.closes.Load())
	}
	return nil
}
