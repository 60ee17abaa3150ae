package integration_test

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/pacehttp/pacehttp"
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

// deepSeekInFlight is DeepSeek under load: it serves at most limit calls
// at once, refuses one more with its bare 429, and keeps each call it
// accepts queued for queue, padding the body with a blank line a second,
// before it answers.
type deepSeekInFlight struct {
	limit int
	queue time.Duration

	mu                        sync.Mutex
	inFlight, peak            int
	attempts, refused, served int
}

func (d *deepSeekInFlight) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	var c apiCall
	if err := json.NewDecoder(r.Body).Decode(&c); err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	d.mu.Lock()
	d.attempts++
	if d.inFlight >= d.limit {
		d.refused++
		d.mu.Unlock()
		writeJSON(w, http.StatusTooManyRequests, `{"error":{"message":"Rate limit reached for requests","type":"rate_limit_reached_error","param":null,"code":"rate_limit_reached"}}`)
		return
	}
	d.inFlight++
	d.peak = max(d.peak, d.inFlight)
	d.mu.Unlock()
	defer func() {
		d.mu.Lock()
		d.inFlight--
		d.served++
		d.mu.Unlock()
	}()
	w.Header().Set("Content-Type", "application/json")
	rc := http.NewResponseController(w)
	for waited := time.Duration(0); waited < d.queue; waited += time.Second {
		io.WriteString(w, "\n")
		rc.Flush()
		time.Sleep(time.Second)
	}
	io.WriteString(w, chatCompletion(c.Model))
}

func (d *deepSeekInFlight) counts() (attempts, refused, served, peak int) {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.attempts, d.refused, d.served, d.peak
}

// TestDeepSeekConcurrencyCap: twelve calls at once against DeepSeek
// serving four at a time. With WithConcurrency(4), pacehttp holds the
// others until a call ends: no refusal, exactly twelve attempts. Without
// it, the server refuses the calls beyond four, which pacehttp then
// retries.
func TestDeepSeekConcurrencyCap(t *testing.T) {
	for _, capped := range []bool{true, false} {
		t.Run(fmt.Sprintf("WithConcurrency=%v", capped), func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				api := &deepSeekInFlight{limit: 4, queue: 3 * time.Second}
				opts := []pacehttp.Option{pacehttp.WithMaxAttempts(8)}
				if capped {
					opts = append(opts, pacehttp.WithConcurrency(4))
				}
				hc := &http.Client{Transport: pacehttp.New(servePipes(t, api), opts...)}
				var wg sync.WaitGroup
				errs := make(chan error, 12)
				for range 12 {
					wg.Go(func() {
						_, err := openaiSDK.call(t.Context(), hc, baseURL, "deepseek-chat", 0)
						errs <- err
					})
				}
				wg.Wait()
				close(errs)
				failed := 0
				for err := range errs {
					if err != nil {
						failed++
						t.Log(err)
					}
				}
				attempts, refused, served, peak := api.counts()
				t.Logf("attempts %d, refused %d, served %d, peak in flight %d, failed calls %d", attempts, refused, served, peak, failed)
				if capped && (attempts != 12 || refused != 0 || failed != 0) {
					t.Errorf("with the cap: %d attempts, %d refused, %d calls failed; want 12, 0, 0", attempts, refused, failed)
				}
				if !capped && refused == 0 {
					t.Errorf("without the cap the server refused nothing: the test shows nothing")
				}
			})
		})
	}
}
