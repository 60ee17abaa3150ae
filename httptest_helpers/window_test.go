package pacetest

import (
	"net/http"
	"testing"
	"testing/synctest"
	"time"

	"github.com/google/go-cmp/cmp"
)

// reply is the part of an answer the model tests compare.
type reply struct {
	Status     int
	RetryAfter string
}

func replyOf(r *http.Response) reply {
	return reply{r.StatusCode, r.Header.Get("Retry-After")}
}

func TestFixedWindow(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		api := NewAPI(Config{Window: 2 * time.Second, Quota: 3, Dialect: OpenAI})
		defer api.Close()
		rt := api.Transport()
		var got []reply
		step := func(d time.Duration) {
			time.Sleep(d)
			got = append(got, replyOf(call(t, rt, "", 1)))
		}
		step(0)                       // 0s: 1 of 3
		step(500 * time.Millisecond)  // 0.5s: 2 of 3
		step(0)                       // 3 of 3
		step(0)                       // refused: 1.5s to the window's end, rounded up
		step(1400 * time.Millisecond) // 1.9s: still this window, 0.1s left
		step(100 * time.Millisecond)  // 2.0s: a new window
		want := []reply{{200, ""}, {200, ""}, {200, ""}, {429, "2"}, {429, "1"}, {200, ""}}
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("answers (-want +got):\n%s", diff)
		}
		h := call(t, rt, "", 1).Header // 2 of 3 in the second window
		if h.Get("X-Ratelimit-Remaining-Requests") != "1" || h.Get("X-Ratelimit-Limit-Requests") != "3" || h.Get("X-Ratelimit-Reset-Requests") != "2s" {
			t.Errorf("window headers: %v", h)
		}
	})
}

func TestSlidingWindow(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		api := NewAPI(Config{Window: time.Second, Quota: 2, Sliding: true, RetryAfter: RetryAfterMillis})
		defer api.Close()
		rt := api.Transport()
		type row struct {
			At     time.Duration
			Status int
			Wait   string
		}
		start := time.Now()
		var got []row
		at := func(d time.Duration) {
			time.Sleep(start.Add(d).Sub(time.Now()))
			r := call(t, rt, "", 1)
			got = append(got, row{d, r.StatusCode, r.Header.Get("Retry-After-Ms")})
		}
		at(0)
		at(300 * time.Millisecond)
		at(400 * time.Millisecond)  // two in the last second: wait until the one at 0 leaves
		at(1000 * time.Millisecond) // it has left
		at(1100 * time.Millisecond) // the one at 0.3s leaves at 1.3s
		at(1300 * time.Millisecond)
		want := []row{
			{0, 200, ""},
			{300 * time.Millisecond, 200, ""},
			{400 * time.Millisecond, 429, "600"},
			{1000 * time.Millisecond, 200, ""},
			{1100 * time.Millisecond, 429, "200"},
			{1300 * time.Millisecond, 200, ""},
		}
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("answers (-want +got):\n%s", diff)
		}
	})
}

func TestZeroQuotaRefusesAll(t *testing.T) {
	for _, sliding := range []bool{false, true} {
		synctest.Test(t, func(t *testing.T) {
			api := NewAPI(Config{Window: time.Second, Quota: 0, Sliding: sliding})
			defer api.Close()
			for range 5 {
				if r := replyOf(call(t, api.Transport(), "", 1)); r != (reply{429, "1"}) {
					t.Errorf("sliding %v: %+v, want a 429 with Retry-After 1", sliding, r)
				}
				time.Sleep(700 * time.Millisecond)
			}
		})
	}
}
