package integration_test

import (
	"io"
	"net/http"
)

// Many OpenAI-compatible proxies and gateways answer 429 with nothing a
// client can read: no Retry-After, no rate-limit header, not even a
// Content-Type or a Date, and a body of plain text.
func newBareProxy(refusals int) *fakeAPI {
	f := &fakeAPI{refusals: refusals}
	f.refuse = func(w http.ResponseWriter, c apiCall) {
		w.Header()["Content-Type"] = nil // no sniffing
		w.Header()["Date"] = nil         // net/http adds none when nil
		w.WriteHeader(http.StatusTooManyRequests)
		io.WriteString(w, "Too Many Requests\n")
	}
	f.answer = func(w http.ResponseWriter, c apiCall) { writeChatAnswer(w, c) }
	return f
}
