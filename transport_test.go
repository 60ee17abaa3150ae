package pacehttp

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/google/go-cmp/cmp"
)

func TestChainOrderAndNilBase(t *testing.T) {
	var order []string
	mark := func(name string) Middleware {
		return func(next http.RoundTripper) http.RoundTripper {
			return roundTripFunc(func(r *http.Request) (*http.Response, error) {
				order = append(order, name)
				return next.RoundTrip(r)
			})
		}
	}
	s := &script{answers: []answer{status(200)}}
	resp, err := Chain(s, mark("a"), mark("b")).RoundTrip(newRequest(t, context.Background(), "GET", nil))
	if err != nil {
		t.Fatal(err)
	}
	readAll(t, resp)
	if diff := cmp.Diff([]string{"a", "b"}, order); diff != "" {
		t.Errorf("order (-want +got):\n%s", diff)
	}
	if Chain(nil) != http.DefaultTransport {
		t.Error("Chain(nil) is not http.DefaultTransport")
	}
}

func TestCallerRequestNotMutated(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s := &script{answers: []answer{status(429), status(200)}}
		req := newRequest(t, context.Background(), "POST", struct{ io.Reader }{strings.NewReader("payload")})
		req.Header.Set("Authorization", "Bearer secret")
		snapshot := fmt.Sprintf("%v %v %v %d %v", req.Method, req.URL, req.Header, req.ContentLength, req.Body)
		resp, err := Chain(s, Retry()).RoundTrip(req)
		if err != nil {
			t.Fatal(err)
		}
		readAll(t, resp)
		if got := fmt.Sprintf("%v %v %v %d %v", req.Method, req.URL, req.Header, req.ContentLength, req.Body); got != snapshot {
			t.Errorf("request changed:\n got %s\nwant %s", got, snapshot)
		}
		if req.GetBody != nil {
			t.Error("GetBody was set on the caller's request")
		}
	})
}

func TestStreamingBodyUntouched(t *testing.T) {
	pr, pw := io.Pipe()
	defer pw.Close()
	rt := New(roundTripFunc(func(req *http.Request) (*http.Response, error) {
		return &http.Response{StatusCode: 200, Header: http.Header{"Content-Type": {"text/event-stream"}}, Body: pr, Request: req}, nil
	}))
	resp, err := rt.RoundTrip(newRequest(t, context.Background(), "POST", strings.NewReader("{}")))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	// RoundTrip returned before the stream produced a byte: nothing read it.
	go pw.Write([]byte("data: first\n\n"))
	buf := make([]byte, 64)
	n, err := resp.Body.Read(buf)
	if err != nil || string(buf[:n]) != "data: first\n\n" {
		t.Fatalf("read %q, %v; want the first event", buf[:n], err)
	}
}

func TestFaultTruncatedBody(t *testing.T) {
	// A 200 that promises 100 bytes and sends 10. The answer was handed back
	// before the body was read, so the caller sees the read error; nothing
	// is retried.
	rt, _ := newFaultTransport(t)
	srv := newRawServer(t, func(c *net.TCPConn) {
		if _, err := readRequest(c); err != nil {
			return
		}
		io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n0123456789")
	})
	resp, err := rt.RoundTrip(faultRequest(t, t.Context(), http.MethodGet, srv.url(), ""))
	if err != nil {
		t.Fatal(err)
	}
	b, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if !errors.Is(err, io.ErrUnexpectedEOF) || string(b) != "0123456789" {
		t.Errorf("read %q, %v; want the 10 bytes and io.ErrUnexpectedEOF", b, err)
	}
	if got := srv.accept.Load(); got != 1 {
		t.Errorf("connections = %d, want 1", got)
	}
	waitZero(t, "server conns", srv.open.Load)
}

func TestFaultsLeaveNoConnections(t *testing.T) {
	// A mix of answers over one keep-alive transport: once its idle
	// connections are closed, the server must hold none open. Every 429
	// would otherwise teach the adaptive pacer a rate of DefaultRateFloor,
	// one request a second, and the test would spend its time in the
	// pacer's queue; a high floor keeps the pacer in the chain without it.
	var n atomic.Int32
	rt, _ := newFaultTransport(t, WithRateFloor(1000))
	srv, cc := newCountedServer(t, func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body)
		switch n.Add(1) % 4 {
		case 0:
			w.Header().Set("Retry-After", "0")
			w.WriteHeader(http.StatusTooManyRequests)
			w.Write(bytes.Repeat([]byte("x"), 200<<10)) // more than is drained
		case 1:
			w.WriteHeader(http.StatusBadGateway)
		case 2:
			panic(http.ErrAbortHandler)
		default:
			io.WriteString(w, "ok")
		}
	})
	for range 20 {
		resp, err := rt.RoundTrip(faultRequest(t, t.Context(), http.MethodGet, srv.URL, ""))
		if err == nil {
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
		}
	}
	rt.CloseIdleConnections()
	waitZero(t, "server conns", cc.open.Load)
	t.Logf("%d requests over %d connections", n.Load(), cc.total.Load())
}

func TestNewAndNewClient(t *testing.T) {
	if tr := New(nil); tr.base != http.DefaultTransport {
		t.Errorf("New(nil) base = %T, want http.DefaultTransport", tr.base)
	}
	c := NewClient(WithMaxAttempts(2))
	if _, ok := c.Transport.(*Transport); !ok || c.Timeout != 0 {
		t.Errorf("NewClient: transport %T, timeout %v; want a *Transport and no timeout, which would cut streams", c.Transport, c.Timeout)
	}
}

// idleCloser is a base transport that counts CloseIdleConnections calls.
type idleCloser struct {
	script
	closed atomic.Int32
}

func (c *idleCloser) CloseIdleConnections() { c.closed.Add(1) }

func TestCloseIdleConnections(t *testing.T) {
	base := &idleCloser{script: script{answers: []answer{status(200)}}}
	New(base).CloseIdleConnections()
	if n := base.closed.Load(); n != 1 {
		t.Errorf("base's CloseIdleConnections called %d times, want 1", n)
	}
	New(&script{answers: []answer{status(200)}}).CloseIdleConnections() // a base without it: nothing to do
}

// TestBodyClosedOnEveryPath: through the full chain, the caller's body is
// closed exactly once on the paths that end before or between attempts.
// (FuzzReplayBody and TestNothingLost cover the paths through the
// transport.)
func TestBodyClosedOnEveryPath(t *testing.T) {
	tests := []struct {
		name    string
		opts    []Option
		answers []answer
		ctx     func() (context.Context, context.CancelFunc)
		before  int // requests sent first, to spend a budget
		wantErr error
	}{
		{"pacer refuses to wait", []Option{WithRate(1, 1), WithMaxWait(100 * time.Millisecond)}, []answer{status(200)}, nil, 1, ErrWaitTooLong},
		{"cancelled during a retry wait", nil, []answer{status(429, "Retry-After", "30")},
			func() (context.Context, context.CancelFunc) {
				ctx, cancel := context.WithCancel(context.Background())
				time.AfterFunc(time.Second, cancel)
				return ctx, cancel
			}, 0, context.Canceled},
		{"deadline too short for the hint", nil, []answer{status(429, "Retry-After", "30")},
			func() (context.Context, context.CancelFunc) {
				return context.WithTimeout(context.Background(), 10*time.Second)
			}, 0, nil},
		{"single attempt, body unread", []Option{WithMaxAttempts(1)}, []answer{status(500)}, nil, 0, nil},
	}
	for _, tt := range tests {
		for _, getBody := range []bool{false, true} {
			t.Run(fmt.Sprintf("%s/GetBody=%v", tt.name, getBody), func(t *testing.T) {
				synctest.Test(t, func(t *testing.T) {
					s := &script{answers: tt.answers}
					rt := New(s, tt.opts...)
					for range tt.before {
						resp, err := rt.RoundTrip(newRequest(t, context.Background(), "GET", nil))
						if err != nil {
							t.Fatal(err)
						}
						readAll(t, resp)
					}
					ctx, cancel := context.WithCancel(context.Background())
					if tt.ctx != nil {
						ctx, cancel = tt.ctx()
					}
					defer cancel()
					body := &countingBody{Reader: strings.NewReader("payload")}
					req := newRequest(t, ctx, "PUT", body)
					if getBody {
						req.GetBody = func() (io.ReadCloser, error) { return io.NopCloser(strings.NewReader("payload")), nil }
					}
					resp, err := rt.RoundTrip(req)
					if tt.wantErr != nil && !errors.Is(err, tt.wantErr) {
						t.Errorf("err = %v, want %v", err, tt.wantErr)
					}
					if resp != nil {
						readAll(t, resp)
					}
					if n := body.closes.Load(); n != 1 {
						t.Errorf("caller's body closed %d times, want 1", n)
					}
				})
			})
		}
	}
}

// A request without a URL is refused as http.Transport refuses it, its
// body closed, instead of a nil dereference.
func TestNilURL(t *testing.T) {
	base := roundTripFunc(func(*http.Request) (*http.Response, error) {
		t.Error("the base transport was called")
		return nil, errors.New("called")
	})
	for name, rt := range map[string]http.RoundTripper{
		"New":   New(base),
		"Pace":  Pace()(base),
		"Retry": Retry()(base),
	} {
		body := &countingBody{Reader: strings.NewReader("x")}
		resp, err := rt.RoundTrip(&http.Request{Method: "POST", Header: http.Header{}, Body: body})
		if resp != nil || !errors.Is(err, ErrNilURL) {
			t.Errorf("%s: %v, %v; want ErrNilURL", name, resp, err)
		}
		if n := body.closes.Load(); n != 1 {
			t.Errorf("%s: body closed %d times, want 1", name, n)
		}
	}
}
