package pacehttp

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// roundTripFunc adapts a function to http.RoundTripper.
type roundTripFunc func(*http.Request) (*http.Response, error)

func (f roundTripFunc) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }

// eventCounter returns a hook option that counts the events of kind, and
// the count.
func eventCounter(kind EventKind) (SharedOption, *atomic.Int32) {
	n := new(atomic.Int32)
	return WithHook(func(e Event) {
		if e.Kind == kind {
			n.Add(1)
		}
	}), n
}

// answer is one scripted outcome of an attempt: a response or an error.
type answer struct {
	status int
	header http.Header
	body   string
	err    error
}

func (a answer) response(req *http.Request) (*http.Response, error) {
	if a.err != nil {
		return nil, a.err
	}
	h := http.Header{}
	for k, v := range a.header {
		h[k] = append([]string(nil), v...)
	}
	return &http.Response{
		StatusCode: a.status, Status: http.StatusText(a.status), Header: h,
		Body: io.NopCloser(strings.NewReader(a.body)), Request: req,
		ContentLength: int64(len(a.body)),
	}, nil
}

func status(code int, kv ...string) answer {
	h := http.Header{}
	for i := 0; i+1 < len(kv); i += 2 {
		h.Add(kv[i], kv[i+1])
	}
	return answer{status: code, header: h, body: fmt.Sprintf(`{"status":%d}`, code)}
}

// script is an in-memory transport that plays answers in order (the last
// repeats) and records what each attempt sent. It behaves as a transport
// must: it reads and closes every request body.
type script struct {
	answers []answer

	mu     sync.Mutex
	bodies []string
	times  []time.Time
	calls  int
}

func (s *script) RoundTrip(req *http.Request) (*http.Response, error) {
	var body []byte
	if req.Body != nil {
		body, _ = io.ReadAll(req.Body)
		req.Body.Close()
	}
	s.mu.Lock()
	a := s.answers[min(s.calls, len(s.answers)-1)]
	s.calls++
	s.bodies = append(s.bodies, string(body))
	s.times = append(s.times, time.Now())
	s.mu.Unlock()
	return a.response(req)
}

func (s *script) sent() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]string(nil), s.bodies...)
}

// countingBody is a caller's request body that counts its Close calls.
type countingBody struct {
	io.Reader
	closes atomic.Int32
}

func (b *countingBody) Close() error { b.closes.Add(1); return nil }

func newRequest(t *testing.T, ctx context.Context, method string, body io.Reader) *http.Request {
	t.Helper()
	req, err := http.NewRequestWithContext(ctx, method, "http://api.test/v1/things", body)
	if err != nil {
		t.Fatal(err)
	}
	return req
}

func readAll(t *testing.T, resp *http.Response) string {
	t.Helper()
	b, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// Loopback helpers. The fault tests (TestFault*) run over real loopback
// sockets, with a base *http.Transport of the test's own so that its idle
// connections can be closed and every goroutine accounted for. Waits are
// kept to milliseconds: backoff is fixed and small, and the retry budget is
// off so that counts depend only on the policy under test.

// faultOpts are the options every fault test shares.
func faultOpts(extra ...Option) []Option {
	return append([]Option{
		WithMaxAttempts(3),
		WithBackoffFunc(func(int) time.Duration { return time.Millisecond }),
		WithRetryBudget(-1, 0),
	}, extra...)
}

// newFaultTransport returns the full chain over a fresh base transport and
// registers the leak checks: when the test ends, idle connections are
// closed and no goroutine started during the test may remain.
func newFaultTransport(t *testing.T, opts ...Option) (*Transport, *http.Transport) {
	t.Helper()
	before := goleak.IgnoreCurrent()
	base := &http.Transport{}
	rt := New(base, faultOpts(opts...)...)
	t.Cleanup(func() {
		rt.CloseIdleConnections()
		goleak.VerifyNone(t, before)
	})
	return rt, base
}

// rawServer is a loopback listener whose every connection is handed to
// serve, for faults below HTTP: resets, truncation, drips. It counts
// accepted connections and those still open.
type rawServer struct {
	ln     net.Listener
	serve  func(c *net.TCPConn)
	wg     sync.WaitGroup
	accept atomic.Int32
	open   atomic.Int32
}

func newRawServer(t *testing.T, serve func(c *net.TCPConn)) *rawServer {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := &rawServer{ln: ln, serve: serve}
	s.wg.Go(func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			s.accept.Add(1)
			s.open.Add(1)
			s.wg.Go(func() {
				defer s.open.Add(-1)
				defer c.Close()
				s.serve(c.(*net.TCPConn))
			})
		}
	})
	// Tests create their transport first, so that this cleanup runs before
	// its leak check: the server is gone before goroutines are counted.
	t.Cleanup(func() {
		ln.Close()
		s.wg.Wait()
	})
	return s
}

func (s *rawServer) url() string { return "http://" + s.ln.Addr().String() + "/" }

// reset drops c with an RST rather than a FIN.
func reset(c *net.TCPConn) {
	c.SetLinger(0)
	c.Close()
}

// readRequest reads one whole request from c, body included, and returns
// the body.
func readRequest(c net.Conn) ([]byte, error) {
	req, err := http.ReadRequest(bufio.NewReader(c))
	if err != nil {
		return nil, err
	}
	defer req.Body.Close()
	return io.ReadAll(req.Body)
}

// faultRequest builds a request with a replayable body, as http.NewRequest
// does for a strings.Reader.
func faultRequest(t *testing.T, ctx context.Context, method, url, body string, header ...string) *http.Request {
	t.Helper()
	var r io.Reader
	if body != "" {
		r = strings.NewReader(body)
	}
	req, err := http.NewRequestWithContext(ctx, method, url, r)
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	return req
}

// waitZero polls n until it reaches zero: the server side of a connection
// learns of its closing asynchronously.
func waitZero(t *testing.T, what string, n func() int32) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for n() != 0 {
		if time.Now().After(deadline) {
			t.Fatalf("%s: %d still open", what, n())
		}
		time.Sleep(time.Millisecond)
	}
}

// connCounter tracks an http.Server's open connections through ConnState.
type connCounter struct{ open, total atomic.Int32 }

func (c *connCounter) track(_ net.Conn, s http.ConnState) {
	switch s {
	case http.StateNew:
		c.open.Add(1)
		c.total.Add(1)
	case http.StateClosed, http.StateHijacked:
		c.open.Add(-1)
	}
}

func newCountedServer(t *testing.T, h http.HandlerFunc) (*httptest.Server, *connCounter) {
	t.Helper()
	cc := &connCounter{}
	srv := httptest.NewUnstartedServer(h)
	srv.Config.ConnState = cc.track
	srv.Start()
	t.Cleanup(srv.Close)
	return srv, cc
}
