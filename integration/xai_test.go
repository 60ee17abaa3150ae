package integration_test

import (
	"fmt"
	"net/http"
)

// xAI serves Grok through an OpenAI-compatible API, with limits per model
// on requests per second and tokens per minute. Its 429 names the limit in
// a JSON body of its own shape ({"code", "error"}) and carries no
// rate-limit header and no Retry-After, so pacehttp can only back off and
// learn the rate from the refusals.
type xaiLimits struct {
	requestsPerSecond, tokensPerMinute int
}

var xaiModels = map[string]xaiLimits{
	"grok-4":      {requestsPerSecond: 8, tokensPerMinute: 2_000_000},
	"grok-3-mini": {requestsPerSecond: 16, tokensPerMinute: 4_000_000},
}

// newXAIAPI is xAI's chat completions endpoint refusing the first refusals
// calls on the model's requests-per-second limit.
func newXAIAPI(refusals int) *fakeAPI {
	f := &fakeAPI{refusals: refusals}
	f.refuse = func(w http.ResponseWriter, c apiCall) {
		lim := xaiModels[c.Model]
		w.Header().Set("x-request-id", requestID("", f.attempts()))
		writeJSON(w, http.StatusTooManyRequests, fmt.Sprintf(`{"code":"Some resource has been exhausted","error":"Your team 8f3c2a1e-5d4b-4c3a-9e2f-1a0b9c8d7e6f has reached its rate limit for model %s: %d requests per second. Please slow down or request a higher limit at https://console.x.ai."}`, c.Model, lim.requestsPerSecond))
	}
	f.answer = func(w http.ResponseWriter, c apiCall) { writeChatAnswer(w, c) }
	return f
}
