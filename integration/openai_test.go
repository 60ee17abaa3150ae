package integration_test

import (
	"fmt"
	"net/http"
	"strconv"
	"time"
)

// OpenAI limits each model on requests and tokens per minute and reports
// both on every answer: x-ratelimit-{limit,remaining,reset}-{requests,tokens},
// resets written as Go durations until the bucket is full again ("120ms",
// "1m0s"). Its 429 carries x-should-retry: true and an x-request-id; its
// error body says which limit was hit, in a "type" of "requests" or
// "tokens".
type openaiLimits struct {
	requests, tokens int // per minute
}

var openaiModels = map[string]openaiLimits{
	"gpt-4o-mini": {requests: 500, tokens: 200_000},
	"gpt-4.1":     {requests: 500, tokens: 30_000},
}

// openaiRateHeaders sets the x-ratelimit-* headers for what is left of lim.
func openaiRateHeaders(h http.Header, lim openaiLimits, requestsLeft, tokensLeft int) {
	set := func(name string, limit, remaining int) {
		h.Set("x-ratelimit-limit-"+name, strconv.Itoa(limit))
		h.Set("x-ratelimit-remaining-"+name, strconv.Itoa(remaining))
		h.Set("x-ratelimit-reset-"+name, perMinute(limit, remaining).Round(time.Millisecond).String())
	}
	set("requests", lim.requests, requestsLeft)
	set("tokens", lim.tokens, tokensLeft)
}

// newOpenAIAPI is OpenAI's Chat Completions API refusing the first
// refusals calls with a 429 on the limit named by limit, "requests" or
// "tokens", spent by other calls of the organisation.
func newOpenAIAPI(refusals int, limit string) *fakeAPI {
	f := &fakeAPI{refusals: refusals}
	f.refuse = func(w http.ResponseWriter, c apiCall) {
		lim := openaiModels[c.Model]
		h := w.Header()
		h.Set("x-request-id", requestID("req_", f.attempts()))
		h.Set("x-should-retry", "true")
		h.Set("openai-processing-ms", "3")
		var message string
		if limit == "requests" {
			openaiRateHeaders(h, lim, 0, lim.tokens-4_200)
			message = fmt.Sprintf("Rate limit reached for %s in organization org-4mEd8QmYsyC4Zc8CwUp1Ghjo on requests per min (RPM): Limit %d, Used %d, Requested 1. Please try again in 120ms. Visit https://platform.openai.com/account/rate-limits to learn more.", c.Model, lim.requests, lim.requests)
		} else {
			openaiRateHeaders(h, lim, lim.requests-40, 0)
			message = fmt.Sprintf("Rate limit reached for %s in organization org-4mEd8QmYsyC4Zc8CwUp1Ghjo on tokens per min (TPM): Limit %d, Used %d, Requested 21. Please try again in 42ms. Visit https://platform.openai.com/account/rate-limits to learn more.", c.Model, lim.tokens, lim.tokens)
		}
		writeJSON(w, http.StatusTooManyRequests, fmt.Sprintf(`{"error":{"message":%q,"type":%q,"param":null,"code":"rate_limit_exceeded"}}`, message, limit))
	}
	f.answer = func(w http.ResponseWriter, c apiCall) {
		lim := openaiModels[c.Model]
		h := w.Header()
		h.Set("x-request-id", requestID("req_", f.attempts()))
		h.Set("openai-processing-ms", "412")
		openaiRateHeaders(h, lim, lim.requests-1, lim.tokens-21)
		writeChatAnswer(w, c)
	}
	return f
}

// writeChatAnswer answers an OpenAI-compatible chat completion, as a JSON
// object or, when the call asks for a stream, as server-sent chunks ending
// with [DONE].
func writeChatAnswer(w http.ResponseWriter, c apiCall, padding ...string) {
	if !c.Stream {
		writeJSON(w, http.StatusOK, chatCompletion(c.Model))
		return
	}
	sseHeader(w)
	writeEvents(w, append(padding, chatChunks(c.Model)...)...)
}

func chatCompletion(model string) string {
	return fmt.Sprintf(`{"id":"chatcmpl-B9MHDbslfkBeAs8l4bebGdFOJ6PeG","object":"chat.completion","created":1764194400,"model":%q,"choices":[{"index":0,"message":{"role":"assistant","content":"Hello!","refusal":null,"annotations":[]},"logprobs":null,"finish_reason":"stop"}],"usage":{"prompt_tokens":9,"completion_tokens":3,"total_tokens":12},"service_tier":"default","system_fingerprint":"fp_06737a9306"}`, model)
}

func chatChunks(model string) []string {
	chunk := func(delta, finish string) string {
		return fmt.Sprintf("data: {\"id\":\"chatcmpl-B9MHDbslfkBeAs8l4bebGdFOJ6PeG\",\"object\":\"chat.completion.chunk\",\"created\":1764194400,\"model\":%q,\"system_fingerprint\":\"fp_06737a9306\",\"choices\":[{\"index\":0,\"delta\":%s,\"logprobs\":null,\"finish_reason\":%s}]}\n\n", model, delta, finish)
	}
	return []string{
		chunk(`{"role":"assistant","content":"Hel"}`, "null"),
		chunk(`{"content":"lo!"}`, "null"),
		chunk(`{}`, `"stop"`) + "data: [DONE]\n\n",
	}
}
