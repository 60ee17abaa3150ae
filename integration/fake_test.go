package integration_test

import (
	"crypto/sha256"
	"encoding/hex"
	"io"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"

	"github.com/pacehttp/pacehttp"
)

// fake is a vendor's API on loopback. It answers the n-th request with the
// n-th answer, the last one again once they run out, and records the
// SHA-256 of every request body so a test can check that retries resend the
// same bytes.
type fake struct {
	srv     *httptest.Server
	answers []http.HandlerFunc

	mu   sync.Mutex
	sums []string
}

// newFake starts a fake that the test closes when it ends.
func newFake(t *testing.T, answers ...http.HandlerFunc) *fake {
	t.Helper()
	f := &fake{answers: answers}
	f.srv = httptest.NewServer(http.HandlerFunc(f.serve))
	t.Cleanup(f.srv.Close)
	return f
}

func (f *fake) URL() string { return f.srv.URL }

func (f *fake) serve(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	sum := sha256.Sum256(body)
	f.mu.Lock()
	answer := f.answers[min(len(f.sums), len(f.answers)-1)]
	f.sums = append(f.sums, hex.EncodeToString(sum[:]))
	f.mu.Unlock()
	answer(w, r)
}

// roundTrips returns the number of requests the server has seen.
func (f *fake) roundTrips() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return len(f.sums)
}

// checkSameBodies fails the test unless every request carried the same
// body, byte for byte.
func (f *fake) checkSameBodies(t *testing.T) {
	t.Helper()
	f.mu.Lock()
	defer f.mu.Unlock()
	for i, s := range f.sums {
		if s != f.sums[0] {
			t.Errorf("body of round trip %d differs from the first: sha256 %s, want %s", i+1, s, f.sums[0])
		}
	}
}

// reply answers with status and a JSON body; header holds names and values
// in turn.
func reply(status int, body string, header ...string) http.HandlerFunc {
	return func(w http.ResponseWriter, _ *http.Request) {
		for i := 0; i+1 < len(header); i += 2 {
			w.Header().Add(header[i], header[i+1])
		}
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(status)
		io.WriteString(w, body)
	}
}

// gatedStream is a server-sent event stream that sends its first event,
// then holds the rest back until release is closed, so that a test sees
// whether the first event reaches the caller while the stream is still open.
type gatedStream struct {
	first, rest string
	release     chan struct{}

	mu       sync.Mutex
	finished bool
}

func newGatedStream(first, rest string) *gatedStream {
	return &gatedStream{first: first, rest: rest, release: make(chan struct{})}
}

func (g *gatedStream) serve(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "text/event-stream")
	w.Header().Set("Cache-Control", "no-cache")
	w.WriteHeader(http.StatusOK)
	rc := http.NewResponseController(w)
	io.WriteString(w, g.first)
	rc.Flush()
	select {
	case <-g.release:
	case <-r.Context().Done():
		return
	}
	io.WriteString(w, g.rest)
	rc.Flush()
	g.mu.Lock()
	g.finished = true
	g.mu.Unlock()
}

func (g *gatedStream) done() bool {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.finished
}

// pacedClient returns an *http.Client over pacehttp, making at most three
// attempts per request, over a base transport of its own whose idle
// connections are closed when the test ends.
func pacedClient(t *testing.T, opts ...pacehttp.Option) *http.Client {
	t.Helper()
	base := http.DefaultTransport.(*http.Transport).Clone()
	t.Cleanup(base.CloseIdleConnections)
	opts = append([]pacehttp.Option{pacehttp.WithMaxAttempts(3)}, opts...)
	return &http.Client{Transport: pacehttp.New(base, opts...)}
}
