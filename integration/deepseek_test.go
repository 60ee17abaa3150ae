package integration_test

import (
	"net/http"
	"strings"
)

// DeepSeek states no rate limit. It caps the calls of an account in flight
// per model and refuses one more with a 429 that carries no hint at all;
// and while a call it accepted waits for capacity, it keeps the connection
// alive with padding before the answer: blank lines ahead of a JSON body,
// ": keep-alive" comments ahead of a stream. The padding is part of the
// body the SDK must receive.
func newDeepSeekAPI(refusals int) *fakeAPI {
	f := &fakeAPI{refusals: refusals}
	f.refuse = func(w http.ResponseWriter, c apiCall) {
		writeJSON(w, http.StatusTooManyRequests, `{"error":{"message":"Rate limit reached for requests","type":"rate_limit_reached_error","param":null,"code":"rate_limit_reached"}}`)
	}
	f.answer = func(w http.ResponseWriter, c apiCall) {
		w.Header().Set("x-ds-trace-id", "8f0d9e41c4b7a2e6f3a9d0c5b1e7f284")
		if c.Stream {
			keepAlive := ": keep-alive\n\n"
			writeChatAnswer(w, c, keepAlive, keepAlive, keepAlive)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		writeEvents(w, "\n", "\n", "\n", chatCompletion(c.Model))
	}
	return f
}

// deepSeekPadding reports whether body starts with DeepSeek's padding.
func deepSeekPadding(body []byte) bool {
	s := string(body)
	return strings.HasPrefix(s, "\n\n\n{") || strings.HasPrefix(s, ": keep-alive\n\n: keep-alive\n\n: keep-alive\n\ndata: ")
}
