package main

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	pacetest "github.com/pacehttp/pacehttp/httptest_helpers"
)

// binWidth is the resolution of the accepted-requests timeline.
const binWidth = 250 * time.Millisecond

// attemptsKey carries a request's attempt counter from the worker to the
// measuring transport, through every clone a contender makes.
type attemptsKey struct{}

// meter is the base transport every contender sends through: it counts what
// reaches the server and what the server answers.
type meter struct {
	next  http.RoundTripper
	start time.Time

	attempts, throttled, overloaded atomic.Int64

	mu       sync.Mutex
	accepted []time.Duration // offsets of 200 answers
}

func (m *meter) RoundTrip(req *http.Request) (*http.Response, error) {
	if n, ok := req.Context().Value(attemptsKey{}).(*atomic.Int64); ok {
		n.Add(1)
	}
	m.attempts.Add(1)
	resp, err := m.next.RoundTrip(req)
	if err != nil {
		return nil, err
	}
	switch resp.StatusCode {
	case http.StatusOK:
		at := time.Since(m.start)
		m.mu.Lock()
		m.accepted = append(m.accepted, at)
		m.mu.Unlock()
	case http.StatusTooManyRequests:
		m.throttled.Add(1)
	case http.StatusServiceUnavailable, 529:
		m.overloaded.Add(1)
	}
	return resp, nil
}

// outcome is what happened to one request of a run.
type outcome struct {
	OK       bool
	Cut      bool   // still unfinished when the run was stopped
	Err      string // why a finished request failed: an error or a status
	Attempts int
	Latency  time.Duration
}

// progress receives the number of finished requests as a run goes.
type progress interface {
	start(name string, total int, limit time.Duration)
	update(done int, elapsed time.Duration)
	finish(done int, elapsed time.Duration)
}

// runContender sends the scenario's N requests through c against a fresh
// fake API, from p.Workers workers, and stops at p.CutFactor times the
// physical bound.
func runContender(c contender, s scenario, p params, prog progress) result {
	api := pacetest.NewAPI(s.Config)
	defer api.Close()
	url := api.URL()

	transport := &http.Transport{
		MaxIdleConns:        p.Workers,
		MaxIdleConnsPerHost: p.Workers,
		IdleConnTimeout:     30 * time.Second,
	}
	defer transport.CloseIdleConnections()

	limit := cutLimit(s.Bound, p.CutFactor)
	start := time.Now()
	m := &meter{next: transport, start: start}
	ctx, cancel := context.WithDeadline(context.Background(), start.Add(limit))
	defer cancel()

	// Rate changes run on their own timers, relative to the run's start.
	for _, rc := range s.Schedule {
		t := time.AfterFunc(rc.At, func() { api.SetRate(rc.Rate) })
		defer t.Stop()
	}

	clients := make([]doer, s.Clients)
	for i := range clients {
		clients[i] = c.New(m, s)
	}

	outcomes := make([]outcome, p.N)
	var next, done atomic.Int64
	var wg sync.WaitGroup
	prog.start(c.Name, p.N, limit)
	for w := range p.Workers {
		do := clients[w%len(clients)]
		wg.Go(func() {
			for {
				i := int(next.Add(1)) - 1
				if i >= p.N {
					return
				}
				outcomes[i] = send(ctx, do, url, s, i)
				done.Add(1)
			}
		})
	}
	stop := make(chan struct{})
	var tick sync.WaitGroup
	tick.Go(func() {
		t := time.NewTicker(100 * time.Millisecond)
		defer t.Stop()
		for {
			select {
			case <-stop:
				return
			case <-t.C:
				prog.update(int(done.Load()), time.Since(start))
			}
		}
	})
	wg.Wait()
	wall := time.Since(start)
	close(stop)
	tick.Wait()
	prog.finish(int(done.Load()), wall)

	m.mu.Lock()
	accepted := m.accepted
	m.mu.Unlock()
	st := api.Stats()
	r := summarize(outcomes, wall, s.Bound)
	r.Contender = c.Name
	r.Setup = c.Setup
	r.Throttled = int(m.throttled.Load())
	r.Overloaded = int(m.overloaded.Load())
	r.Attempts = int(m.attempts.Load())
	r.Limit = limit
	r.Stopped = wall >= limit
	r.ServerPeakConcurrency = st.PeakConcurrency
	r.Timeline = perSecond(accepted, binWidth)
	return r
}

// cutLimit is when a contender is stopped: factor times the bound, but never
// less than two seconds, so that a tiny bound does not cut a fair client.
func cutLimit(bound time.Duration, factor float64) time.Duration {
	return max(time.Duration(float64(bound)*factor), 2*time.Second)
}

// send makes request i of the scenario through do and records its outcome.
func send(ctx context.Context, do doer, url string, s scenario, i int) outcome {
	if ctx.Err() != nil {
		return outcome{Cut: true}
	}
	attempts := new(atomic.Int64)
	ctx = context.WithValue(ctx, attemptsKey{}, attempts)
	var (
		req *http.Request
		err error
	)
	if s.Costs != nil {
		req, err = http.NewRequestWithContext(ctx, http.MethodPost, url+"/v1/messages", bytes.NewReader(requestBody(s.Costs[i])))
	} else {
		req, err = http.NewRequestWithContext(ctx, http.MethodGet, url+"/v1/items", nil)
	}
	if err != nil {
		panic(err) // the URL is ours; this cannot fail
	}
	if s.Config.PerKey {
		req.Header.Set("Authorization", "Bearer shared-demo-key")
	}
	began := time.Now()
	resp, err := do(req)
	o := outcome{Latency: time.Since(began)}
	switch {
	case err != nil:
		o.Err = err.Error()
	case resp.StatusCode != http.StatusOK:
		o.Err = resp.Status
	default:
		o.OK = true
	}
	if resp != nil {
		drain(resp)
	}
	o.Attempts = int(attempts.Load())
	if !o.OK && ctx.Err() != nil && (err == nil || errors.Is(err, context.DeadlineExceeded) || errors.Is(err, context.Canceled)) {
		o.Cut, o.Err = true, ""
	}
	return o
}

// requestBody is a JSON body that the fake API's default cost function
// (a quarter of the length) prices at cost tokens.
func requestBody(cost int) []byte {
	const head, tail = `{"prompt":"`, `"}`
	n := max(cost*4-len(head)-len(tail), 0)
	return []byte(head + strings.Repeat("x", n) + tail)
}

func drain(resp *http.Response) {
	_, _ = io.Copy(io.Discard, resp.Body)
	_ = resp.Body.Close()
}
