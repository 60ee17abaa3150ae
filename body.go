package pacehttp

import (
	"bytes"
	"fmt"
	"io"
	"math"
	"net/http"
)

// A replay yields the request to send for each attempt of one logical
// request, with a fresh copy of its body every time.
//
// The rules, in order:
//   - no body, or http.NoBody: every attempt is the caller's request;
//   - GetBody set: the first attempt sends the caller's body as is, later
//     ones a body from GetBody (no copy is made);
//   - with a negative limit (a single attempt allowed, so nothing to
//     replay) the body is sent once, unread;
//   - otherwise the body is read into memory, up to a limit, and every
//     attempt reads from that buffer;
//   - a body over the limit is streamed once and not replayed: what was
//     read while probing its size is sent first, then the rest.
//
// The caller's body is closed exactly once: by the transport that sends it
// (cases 1, 2, 3 and 5), or by replay after buffering it (case 4).
type replay struct {
	orig    *http.Request
	first   *http.Request                 // request for attempt 1
	getBody func() (io.ReadCloser, error) // nil: body cannot be replayed
	static  bool                          // no body: every attempt is orig
}

// newReplay prepares req for repeated sending. On error it has closed the
// caller's body.
func newReplay(req *http.Request, limit int64) (replay, error) {
	r := replay{orig: req, first: req}
	switch {
	case req.Body == nil || req.Body == http.NoBody:
		r.static = true
	case req.GetBody != nil:
		r.getBody = req.GetBody
	case limit < 0:
		// No retry to buffer for: the body goes once, unread by us.
	default:
		// One byte past the limit tells an oversize body; at MaxInt64
		// there is no such byte to read, and limit+1 would wrap.
		buf, err := io.ReadAll(io.LimitReader(req.Body, min(limit, math.MaxInt64-1)+1))
		if err != nil {
			req.Body.Close()
			return replay{}, fmt.Errorf("reading request body: %w", err)
		}
		if int64(len(buf)) > limit {
			// Too large to hold: send it once, the probed prefix first.
			r.first = withBody(req, &prefixedBody{Reader: io.MultiReader(bytes.NewReader(buf), req.Body), closer: req.Body}, nil)
			return r, nil
		}
		req.Body.Close()
		r.getBody = func() (io.ReadCloser, error) {
			return io.NopCloser(bytes.NewReader(buf)), nil
		}
		r.first = withBody(req, io.NopCloser(bytes.NewReader(buf)), r.getBody)
	}
	return r, nil
}

// replayable reports whether attempts after the first can be made.
func (r *replay) replayable() bool { return r.static || r.getBody != nil }

// attempt returns the request for attempt n (from 1), or GetBody's error.
// It never modifies the caller's request: later attempts are shallow
// copies sharing its headers, which no layer of the chain writes to.
func (r *replay) attempt(n int) (*http.Request, error) {
	if n == 1 || r.static {
		return r.first, nil
	}
	body, err := r.getBody()
	if err != nil {
		return nil, err
	}
	return withBody(r.orig, body, r.getBody), nil
}

// unsent closes the body of an attempt that will not be made, if it is one
// of replay's own; the caller's body is left to whoever holds it.
func (r *replay) unsent(req *http.Request) {
	if req != r.first && req.Body != nil {
		req.Body.Close()
	}
}

func withBody(req *http.Request, body io.ReadCloser, getBody func() (io.ReadCloser, error)) *http.Request {
	r2 := *req
	r2.Body = body
	r2.GetBody = getBody
	return &r2
}

// prefixedBody is an oversize body: the bytes read while probing its size,
// then the unread rest. Closing it closes the caller's body.
type prefixedBody struct {
	io.Reader
	closer io.Closer
}

func (b *prefixedBody) Close() error { return b.closer.Close() }
