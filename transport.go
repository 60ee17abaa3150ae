package pacehttp

import "net/http"

// Middleware wraps a RoundTripper in another. The result must honour the
// http.RoundTripper contract: never modify the request, and close its body
// exactly once, including on error.
type Middleware func(next http.RoundTripper) http.RoundTripper

// Chain wraps base in the middlewares so that the first one listed is the
// outermost: Chain(base, a, b) sends a request through a, then b, then base.
// A nil base means http.DefaultTransport.
func Chain(base http.RoundTripper, mws ...Middleware) http.RoundTripper {
	if base == nil {
		base = http.DefaultTransport
	}
	rt := base
	for i := len(mws) - 1; i >= 0; i-- {
		rt = mws[i](rt)
	}
	return rt
}

// Transport is the full pacehttp chain: retries as the server asks, over a
// pacer that keeps requests under the server's limit. Build one with New;
// the zero value is not usable. A Transport is safe for concurrent use and
// should be shared by every request that counts against the same limits,
// because the state it learns (rates, cool-downs) lives in it.
type Transport struct {
	base  http.RoundTripper
	chain http.RoundTripper
}

// New returns the full chain over base with the given options. A nil base
// means http.DefaultTransport. With no options it retries up to
// DefaultMaxAttempts times, waits at most DefaultMaxWait at a time, and paces
// adaptively, learning the server's limit from its answers.
func New(base http.RoundTripper, opts ...Option) *Transport {
	if base == nil {
		base = http.DefaultTransport
	}
	cfg := newConfig(opts)
	return &Transport{
		base:  base,
		chain: Chain(base, cfg.retryMiddleware(), cfg.paceMiddleware()),
	}
}

// NewClient returns an *http.Client whose transport is New(nil, opts...).
// It sets no Timeout: an overall client timeout would also cut long
// streaming responses; use a context deadline per request instead.
func NewClient(opts ...Option) *http.Client {
	return &http.Client{Transport: New(nil, opts...)}
}

// RoundTrip implements http.RoundTripper.
func (t *Transport) RoundTrip(req *http.Request) (*http.Response, error) {
	return t.chain.RoundTrip(req)
}

// CloseIdleConnections closes idle connections of the base transport, if it
// has such a method. pacehttp itself never calls it: the base's pool may be
// shared with other clients.
func (t *Transport) CloseIdleConnections() {
	type closeIdler interface{ CloseIdleConnections() }
	if c, ok := t.base.(closeIdler); ok {
		c.CloseIdleConnections()
	}
}
