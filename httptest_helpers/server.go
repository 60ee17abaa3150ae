package pacetest

import (
	"context"
	"encoding/json"
	"net"
	"net/http"
	"net/http/httptest"
	"sync"
	"sync/atomic"
	"time"
)

// server is the socket side shared by Scripted and API. It starts lazily so
// that in-memory use never touches the network (see the package doc).
type server struct {
	handler http.Handler

	mu     sync.Mutex
	srv    *httptest.Server
	closed bool
	conns  atomic.Int64
}

// connKey is the context key under which each real connection's id travels
// to the handler.
type connKey struct{}

// connID returns the id of the TCP connection r arrived on, or 0 for a
// request that did not come over a socket.
func connID(r *http.Request) int {
	id, _ := r.Context().Value(connKey{}).(int)
	return id
}

func (s *server) start() *httptest.Server {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		panic("pacetest: URL or Client called after Close")
	}
	if s.srv == nil {
		srv := httptest.NewUnstartedServer(s.handler)
		// ConnContext runs once per accepted connection, before any request
		// on it, which makes it the place to both count and label them.
		srv.Config.ConnContext = func(ctx context.Context, _ net.Conn) context.Context {
			return context.WithValue(ctx, connKey{}, int(s.conns.Add(1)))
		}
		srv.Start()
		s.srv = srv
	}
	return s.srv
}

func (s *server) url() string          { return s.start().URL }
func (s *server) client() *http.Client { return s.start().Client() }
func (s *server) connCount() int       { return int(s.conns.Load()) }
func (s *server) transport() http.RoundTripper {
	return &memTransport{handler: s.handler}
}

func (s *server) close() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.closed = true
	if s.srv != nil {
		s.srv.Close()
	}
}

// sleep waits for d or until ctx ends, and reports whether the full wait
// elapsed. A fake must stop working for a client that has gone away, as a
// real server does, or a cancelled request would hold a goroutine.
func sleep(ctx context.Context, d time.Duration) bool {
	if d <= 0 {
		return ctx.Err() == nil
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}

// writeError answers with a JSON error body in the shape most AI vendors
// use, which SDKs parse.
func writeError(w http.ResponseWriter, status int, typ, msg string) {
	type detail struct {
		Type    string `json:"type"`
		Message string `json:"message"`
	}
	body, _ := json.Marshal(struct {
		Error detail `json:"error"`
	}{detail{typ, msg}})
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_, _ = w.Write(body)
}
