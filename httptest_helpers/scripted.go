package pacetest

import (
	"crypto/sha256"
	"encoding/hex"
	"io"
	"net/http"
	"slices"
	"strings"
	"sync"
	"time"
)

// A Step is one scripted answer. The zero Step answers 200 with an empty body.
type Step struct {
	// Status is the status code; 0 means 200.
	Status int
	// Header is copied onto the response.
	Header http.Header
	// Body is the response body. If it starts with '{' or '[' and Header
	// has no Content-Type, Content-Type is application/json, because SDKs
	// refuse to decode JSON sent under any other type.
	Body string
	// Delay is how long the server waits before answering. The wait ends
	// early, with no answer, if the request's context ends.
	Delay time.Duration
	// Stream, if not empty, replaces Body: each element is written verbatim
	// and flushed on its own, Interval apart, so a client sees them one at a
	// time. Write complete server-sent events, such as "data: {}\n\n".
	// Content-Type defaults to text/event-stream.
	Stream []string
	// Interval is the pause between two elements of Stream.
	Interval time.Duration
	// CloseConn drops the connection instead of finishing the answer: with
	// no Stream, before the status line is sent; with a Stream, after its
	// last element, so the client sees a stream cut short.
	CloseConn bool
}

// OK returns a 200 step with the given body.
func OK(body string) Step { return Step{Body: body} }

// TooManyRequests returns a 429 step with the given Retry-After value (left
// out when empty) and a JSON error body.
func TooManyRequests(retryAfter string) Step {
	s := Step{
		Status: http.StatusTooManyRequests,
		Body:   `{"error":{"type":"rate_limit_error","message":"rate limit exceeded"}}`,
	}
	if retryAfter != "" {
		s.Header = http.Header{"Retry-After": {retryAfter}}
	}
	return s
}

// Status returns a step with the given status code and header, given as
// alternating names and values: Status(503, "Retry-After", "2").
// It panics if header has an odd length.
func Status(code int, header ...string) Step {
	if len(header)%2 != 0 {
		panic("pacetest: Status wants header names and values in pairs")
	}
	s := Step{Status: code}
	if len(header) > 0 {
		s.Header = make(http.Header)
		for i := 0; i < len(header); i += 2 {
			s.Header.Add(header[i], header[i+1])
		}
	}
	return s
}

// A Request is what a Scripted server recorded of one request.
type Request struct {
	Time       time.Time   // when the request arrived
	Method     string      // request method
	Path       string      // path and query, as URL.RequestURI returns them
	Header     http.Header // a copy of the request header
	Body       []byte      // the whole request body
	BodySHA256 string      // hex SHA-256 of Body, to compare retried bodies
	// Conn identifies the TCP connection the request arrived on, numbered
	// from 1 in order of acceptance; it is 0 for requests sent through
	// Handler or Transport.
	Conn int
}

// Scripted is a server that answers the n-th request with the n-th step of
// its script, and the last step again once the script has run out. It
// records every request. Create one with NewScripted; it is safe for
// concurrent use, and concurrent requests take steps in order of arrival.
type Scripted struct {
	s     server
	steps []Step

	mu   sync.Mutex
	reqs []Request
}

// NewScripted returns a server that plays steps in order. With no steps it
// answers every request with an empty 200. Close it when done.
func NewScripted(steps ...Step) *Scripted {
	sc := &Scripted{steps: slices.Clone(steps)}
	if len(sc.steps) == 0 {
		sc.steps = []Step{{}}
	}
	sc.s.handler = http.HandlerFunc(sc.serve)
	return sc
}

// URL returns the base URL of the server, of the form http://ipaddr:port,
// starting its loopback listener on first use. It panics after Close.
func (sc *Scripted) URL() string { return sc.s.url() }

// Client returns an HTTP client configured for the server, starting its
// loopback listener on first use. Close closes the client's idle connections.
// It panics after Close.
func (sc *Scripted) Client() *http.Client { return sc.s.client() }

// Close shuts down the listener, if it was started, and blocks until all
// outstanding requests on it have completed.
func (sc *Scripted) Close() { sc.s.close() }

// Conns returns the number of TCP connections the server has accepted.
func (sc *Scripted) Conns() int { return sc.s.connCount() }

// Handler returns the server's behaviour as a handler, with no network.
// Requests it serves are recorded and take steps like any others.
func (sc *Scripted) Handler() http.Handler { return sc.s.handler }

// Transport returns a RoundTripper that serves requests in memory, without
// sockets; use it with testing/synctest. Its responses stream what the
// handler flushes, and each request's context is honoured.
func (sc *Scripted) Transport() http.RoundTripper { return sc.s.transport() }

// Requests returns every request seen so far, in order of arrival.
func (sc *Scripted) Requests() []Request {
	sc.mu.Lock()
	defer sc.mu.Unlock()
	return slices.Clone(sc.reqs)
}

func (sc *Scripted) serve(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	sum := sha256.Sum256(body)
	rec := Request{
		Time:       time.Now(),
		Method:     r.Method,
		Path:       r.URL.RequestURI(),
		Header:     r.Header.Clone(),
		Body:       body,
		BodySHA256: hex.EncodeToString(sum[:]),
		Conn:       connID(r),
	}
	sc.mu.Lock()
	step := sc.steps[min(len(sc.reqs), len(sc.steps)-1)]
	sc.reqs = append(sc.reqs, rec)
	sc.mu.Unlock()
	step.serve(w, r)
}

func (st *Step) serve(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	if !sleep(ctx, st.Delay) {
		return
	}
	if st.CloseConn && len(st.Stream) == 0 {
		panic(http.ErrAbortHandler)
	}
	h := w.Header()
	for k, v := range st.Header {
		h[k] = slices.Clone(v)
	}
	status := st.Status
	if status == 0 {
		status = http.StatusOK
	}
	if len(st.Stream) == 0 {
		if h.Get("Content-Type") == "" && (strings.HasPrefix(st.Body, "{") || strings.HasPrefix(st.Body, "[")) {
			h.Set("Content-Type", "application/json")
		}
		w.WriteHeader(status)
		_, _ = io.WriteString(w, st.Body)
		return
	}

	if h.Get("Content-Type") == "" {
		h.Set("Content-Type", "text/event-stream")
	}
	rc := http.NewResponseController(w)
	w.WriteHeader(status)
	if rc.Flush() != nil {
		return
	}
	for i, chunk := range st.Stream {
		if i > 0 && !sleep(ctx, st.Interval) {
			return
		}
		if _, err := io.WriteString(w, chunk); err != nil {
			return
		}
		if rc.Flush() != nil {
			return
		}
	}
	if st.CloseConn {
		panic(http.ErrAbortHandler)
	}
}
