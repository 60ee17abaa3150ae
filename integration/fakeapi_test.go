package integration_test

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"
)

// A fakeAPI is one vendor's API in memory. It refuses the first refusals
// requests in the vendor's own words (refuse), answers the rest (answer),
// and records every request it receives, so that a test can count the
// attempts that reached the server and check that retries resent the same
// bytes. Serve it with servePipes, inside a synctest bubble.
type fakeAPI struct {
	refusals int
	refuse   func(w http.ResponseWriter, c apiCall)
	answer   func(w http.ResponseWriter, c apiCall)

	mu       sync.Mutex
	received []received
	at       []time.Time  // when each request arrived
	sent     bytes.Buffer // the body of the last answer, as written
	finished time.Time    // when the last answer was complete
}

// An apiCall is what a fake reads of a request: the model it names (the
// JSON "model" field, or Gemini's URL path), whether it asks for a stream,
// and its max_tokens.
type apiCall struct {
	Model     string `json:"model"`
	Stream    bool   `json:"stream"`
	MaxTokens int    `json:"max_tokens"`
	// Path is the request's URL path.
	Path string `json:"-"`
}

// received is what a fake recorded of one request.
type received struct {
	path, model string
	bodySHA256  string
	// sdkAttempt is X-Stainless-Retry-Count, the attempt number the
	// Anthropic and OpenAI SDKs put on each of their own attempts: equal on
	// every request when pacehttp alone did the retrying.
	sdkAttempt string
}

// forever is a refusal count no test reaches.
const forever = 1 << 30

func (f *fakeAPI) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, err := io.ReadAll(r.Body)
	if err != nil {
		http.Error(w, "reading request: "+err.Error(), http.StatusBadRequest)
		return
	}
	c := apiCall{Path: r.URL.Path}
	if len(body) > 0 {
		if err := json.Unmarshal(body, &c); err != nil {
			http.Error(w, "request is not JSON: "+err.Error(), http.StatusBadRequest)
			return
		}
	}
	if c.Model == "" {
		c.Model = geminiModel(r.URL.Path)
	}
	sum := sha256.Sum256(body)
	f.mu.Lock()
	n := len(f.received)
	f.received = append(f.received, received{
		path: r.URL.Path, model: c.Model,
		bodySHA256: hex.EncodeToString(sum[:]),
		sdkAttempt: r.Header.Get("X-Stainless-Retry-Count"),
	})
	f.at = append(f.at, time.Now())
	f.mu.Unlock()

	if n < f.refusals {
		f.refuse(w, c)
		return
	}
	rec := &recordingWriter{ResponseWriter: w}
	f.answer(rec, c)
	f.mu.Lock()
	f.sent = rec.body
	f.finished = time.Now()
	f.mu.Unlock()
}

// attempts returns the number of requests the fake has received.
func (f *fakeAPI) attempts() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return len(f.received)
}

// arrivals returns when each request arrived.
func (f *fakeAPI) arrivals() []time.Time {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.at)
}

// lastAnswer returns the body of the last answer as written, and when it
// was complete.
func (f *fakeAPI) lastAnswer() ([]byte, time.Time) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return bytes.Clone(f.sent.Bytes()), f.finished
}

// checkOneCall fails the test unless every request the fake received was
// the same call: the same path and body, byte for byte, and the same SDK
// attempt, so that the SDK's own retry loop made none of them.
func (f *fakeAPI) checkOneCall(t *testing.T) {
	t.Helper()
	f.mu.Lock()
	defer f.mu.Unlock()
	for i, r := range f.received[1:] {
		if first := f.received[0]; r != first {
			t.Errorf("request %d differs from the first: %+v, want %+v", i+2, r, first)
		}
	}
}

// recordingWriter keeps a copy of the body written through it. It passes
// Flush on, so that an answer streams.
type recordingWriter struct {
	http.ResponseWriter
	body bytes.Buffer
}

func (w *recordingWriter) Write(p []byte) (int, error) {
	w.body.Write(p)
	return w.ResponseWriter.Write(p)
}

func (w *recordingWriter) Flush() { http.NewResponseController(w.ResponseWriter).Flush() }

// eventGap is the pause between two events of a streamed answer. A client
// that delivers the first event before the answer is complete receives it
// at least one gap before the fake's finish time.
const eventGap = 100 * time.Millisecond

// writeEvents writes each chunk of a streamed answer, flushed on its own,
// eventGap apart.
func writeEvents(w http.ResponseWriter, chunks ...string) {
	rc := http.NewResponseController(w)
	for i, c := range chunks {
		if i > 0 {
			time.Sleep(eventGap)
		}
		io.WriteString(w, c)
		rc.Flush()
	}
}

// writeJSON writes status and a JSON body after the headers already set.
func writeJSON(w http.ResponseWriter, status int, body string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	io.WriteString(w, body)
}

// sseHeader sets the headers of a server-sent event stream.
func sseHeader(w http.ResponseWriter) {
	w.Header().Set("Content-Type", "text/event-stream; charset=utf-8")
	w.Header().Set("Cache-Control", "no-cache")
}

// requestID returns the n-th id of the form a vendor uses, such as
// "req_011CR5" + digits.
func requestID(prefix string, n int) string {
	return fmt.Sprintf("%s%024d", prefix, n)
}

// perMinute returns how long a bucket of limit units refilled evenly over a
// minute takes to get back from remaining to full.
func perMinute(limit, remaining int) time.Duration {
	if limit <= 0 || remaining >= limit {
		return 0
	}
	return time.Duration(int64(limit-remaining) * int64(time.Minute) / int64(limit))
}

// geminiModel returns the model named in a Gemini URL path such as
// /v1beta/models/gemini-2.5-flash:generateContent, "" if none.
func geminiModel(path string) string {
	_, rest, ok := strings.Cut(path, "/models/")
	if !ok {
		return ""
	}
	model, _, _ := strings.Cut(rest, ":")
	return model
}
