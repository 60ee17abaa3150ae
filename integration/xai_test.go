package integration_test

import (
	"encoding/json"
	"fmt"
	"net/http"
	"sync"
	"testing"
	"testing/synctest"

	"github.com/pacehttp/pacehttp"
	"golang.org/x/time/rate"
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

// xaiPerModel is xAI enforcing each model's requests-per-second limit with
// a token bucket of one second's requests, refusing as newXAIAPI does.
type xaiPerModel struct {
	mu       sync.Mutex
	buckets  map[string]*rate.Limiter
	accepted map[string]int
	refused  map[string]int
}

func newXAIPerModel() *xaiPerModel {
	x := &xaiPerModel{buckets: map[string]*rate.Limiter{}, accepted: map[string]int{}, refused: map[string]int{}}
	for model, lim := range xaiModels {
		x.buckets[model] = rate.NewLimiter(rate.Limit(lim.requestsPerSecond), lim.requestsPerSecond)
	}
	return x
}

func (x *xaiPerModel) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	var c apiCall
	if err := json.NewDecoder(r.Body).Decode(&c); err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	x.mu.Lock()
	ok := x.buckets[c.Model].Allow()
	if ok {
		x.accepted[c.Model]++
	} else {
		x.refused[c.Model]++
	}
	x.mu.Unlock()
	if !ok {
		writeJSON(w, http.StatusTooManyRequests, fmt.Sprintf(`{"code":"Some resource has been exhausted","error":"Your team has reached its rate limit for model %s: %d requests per second."}`, c.Model, xaiModels[c.Model].requestsPerSecond))
		return
	}
	writeChatAnswer(w, c)
}

// TestXAIStatedRatePerModel: two Grok models with different limits, called
// at once, each through a client that states its model's rate, as
// docs/sdks.md advises: xAI refuses nothing, and every call takes exactly
// one attempt.
func TestXAIStatedRatePerModel(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		api := newXAIPerModel()
		tr := servePipes(t, api)
		const calls = 40
		var wg sync.WaitGroup
		for model, lim := range xaiModels {
			hc := &http.Client{Transport: pacehttp.New(tr, pacehttp.WithRate(float64(lim.requestsPerSecond), lim.requestsPerSecond))}
			for range 4 {
				wg.Go(func() {
					for range calls / 4 {
						if _, err := openaiSDK.call(t.Context(), hc, baseURL, model, 0); err != nil {
							t.Errorf("%s: %v", model, err)
						}
					}
				})
			}
		}
		wg.Wait()
		for model := range xaiModels {
			if api.accepted[model] != calls || api.refused[model] != 0 {
				t.Errorf("%s: %d accepted, %d refused; want %d and 0", model, api.accepted[model], api.refused[model], calls)
			}
		}
	})
}
