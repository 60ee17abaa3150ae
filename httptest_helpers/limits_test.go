package pacetest

import (
	"context"
	"net/http"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/google/go-cmp/cmp"
)

func TestConcurrencyCap(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		api := NewAPI(Config{MaxInFlight: 2, Latency: time.Second, Rate: 100, Dialect: OpenAI})
		defer api.Close()
		rt := api.Transport()
		var wg sync.WaitGroup
		for range 2 {
			wg.Go(func() { call(t, rt, "", 1) })
		}
		synctest.Wait() // both are being served
		r := call(t, rt, "", 1)
		if r.StatusCode != 429 {
			t.Fatalf("third request in flight: %d, want 429", r.StatusCode)
		}
		// DeepSeek's way: no hint at all, not even the rate headers.
		for k := range r.Header {
			if k != "Content-Type" {
				t.Errorf("bare 429 has header %s", k)
			}
		}
		wg.Wait()
		if r := call(t, rt, "", 1); r.StatusCode != 200 {
			t.Errorf("after both ended: %d, want 200", r.StatusCode)
		}
		if st := api.Stats(); st.PeakInFlight != 2 || st.Refused != 1 {
			t.Errorf("PeakInFlight %d, Refused %d; want 2, 1", st.PeakInFlight, st.Refused)
		}
	})
}

// An abandoned request frees its place at once, as a real server notices
// the closed connection.
func TestConcurrencyCapFreedByCancel(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		api := NewAPI(Config{MaxInFlight: 1, Latency: time.Hour})
		defer api.Close()
		rt := api.Transport()
		req := get(t, "http://api.test/")
		ctx, cancel := context.WithCancel(t.Context())
		go rt.RoundTrip(req.WithContext(ctx))
		synctest.Wait()
		cancel()
		synctest.Wait()
		if got := api.Answers(); len(got) != 1 || !got[0].Abandoned || got[0].Done.IsZero() {
			t.Errorf("answers %+v, want one abandoned and done", got)
		}
		ctx2, cancel2 := context.WithCancel(t.Context())
		defer cancel2()
		go rt.RoundTrip(get(t, "http://api.test/").WithContext(ctx2))
		synctest.Wait()
		if st := api.Stats(); st.Accepted != 2 {
			t.Errorf("accepted %d, want 2: the cancelled request left room", st.Accepted)
		}
		cancel2()
		synctest.Wait()
	})
}

func TestPenalty(t *testing.T) {
	for _, extends := range []bool{false, true} {
		synctest.Test(t, func(t *testing.T) {
			api := NewAPI(Config{Rate: 10, Burst: 1, Penalty: 3 * time.Second, PenaltyExtends: extends})
			defer api.Close()
			rt := api.Transport()
			var got []reply
			step := func(d time.Duration) {
				time.Sleep(d)
				got = append(got, replyOf(call(t, rt, "", 1)))
			}
			step(0)                       // admitted
			step(0)                       // exceeds: suspended for 3s
			step(1500 * time.Millisecond) // 1.5s left, or 3s again
			step(1600 * time.Millisecond) // 3.1s: free, unless extended at 1.5s
			want := []reply{{200, ""}, {429, "3"}, {429, "2"}, {200, ""}}
			if extends {
				want = []reply{{200, ""}, {429, "3"}, {429, "3"}, {429, "3"}}
			}
			if diff := cmp.Diff(want, got); diff != "" {
				t.Errorf("extends %v: answers (-want +got):\n%s", extends, diff)
			}
		})
	}
}

func TestModels(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		api := NewAPI(Config{Rate: 1, Burst: 1, Models: map[string]Limits{
			"fast": {Rate: 100, Burst: 3},
			"slow": {Rate: 1, Burst: 1},
		}})
		defer api.Close()
		rt := api.Transport()
		send := func(path, body string) int {
			req, _ := http.NewRequest(http.MethodPost, "http://api.test"+path, strings.NewReader(body))
			return do(t, rt, req).Status
		}
		var got []int
		for range 4 {
			got = append(got, send("/v1/chat/completions", `{"model":"fast","messages":[]}`))
		}
		for range 2 {
			got = append(got, send("/v1beta/models/slow:generateContent", `{"contents":[]}`))
		}
		// An unlisted model has buckets of its own, with the Config's limits.
		got = append(got, send("/v1/messages", `{"model":"other"}`), send("/v1/messages", `{"model":"other"}`))
		got = append(got, send("/v1/messages", `{}`))
		want := []int{200, 200, 200, 429, 200, 429, 200, 429, 200}
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("statuses (-want +got):\n%s", diff)
		}
		st := api.Stats()
		wantModels := map[string]Counts{
			"fast":  {Requests: 4, Accepted: 3, Refused: 1, PeakInFlight: 1},
			"slow":  {Requests: 2, Accepted: 1, Refused: 1, PeakInFlight: 1},
			"other": {Requests: 2, Accepted: 1, Refused: 1, PeakInFlight: 1},
			"":      {Requests: 1, Accepted: 1, PeakInFlight: 1},
		}
		if diff := cmp.Diff(wantModels, st.Models); diff != "" {
			t.Errorf("Stats.Models (-want +got):\n%s", diff)
		}
	})
}

func TestModelOf(t *testing.T) {
	for _, tt := range []struct{ path, body, want string }{
		{"/v1/chat/completions", `{"model":"gpt-4o","messages":[]}`, "gpt-4o"},
		{"/v1/messages", `{"max_tokens":1,"model":"claude-sonnet-4"}`, "claude-sonnet-4"},
		{"/v1beta/models/gemini-2.5-flash:generateContent", ``, "gemini-2.5-flash"},
		{"/v1beta/models/gemini-2.5-flash:streamGenerateContent", `{"contents":[]}`, "gemini-2.5-flash"},
		{"/v1/models/gpt-4o", ``, "gpt-4o"},
		{"/v1/items", ``, ""},
		{"/v1/messages", `{"model":`, ""}, // not JSON
		{"/v1/messages", `{"model":42}`, ""},
	} {
		if got := modelOf(tt.path, []byte(tt.body)); got != tt.want {
			t.Errorf("modelOf(%q, %q) = %q, want %q", tt.path, tt.body, got, tt.want)
		}
	}
}

func TestSeveralLimitsAtOnce(t *testing.T) {
	// A bucket of 5 at 10/s and a window of 6 per second: the bucket lets
	// the first 5 through, the window stops the seventh.
	synctest.Test(t, func(t *testing.T) {
		api := NewAPI(Config{Rate: 10, Burst: 5, Window: time.Second, Quota: 6})
		defer api.Close()
		var got []int
		for range 6 {
			got = append(got, call(t, api.Transport(), "", 1).StatusCode)
		}
		time.Sleep(200 * time.Millisecond) // two tokens back
		for range 2 {
			got = append(got, call(t, api.Transport(), "", 1).StatusCode)
		}
		want := []int{200, 200, 200, 200, 200, 429, 200, 429}
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("statuses (-want +got):\n%s", diff)
		}
	})
}
