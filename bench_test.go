package pacehttp

import (
	"io"
	"net/http"
	"strings"
	"testing"
)

// cannedRT answers 200 at once without touching the network, so a benchmark
// over it measures only the layers above.
type cannedRT struct{}

func (cannedRT) RoundTrip(req *http.Request) (*http.Response, error) {
	if req.Body != nil {
		req.Body.Close()
	}
	return &http.Response{StatusCode: 200, Header: http.Header{}, Body: http.NoBody, Request: req}, nil
}

// BenchmarkOverhead reports the cost per request of each layer when nothing
// binds: no retry, no wait. The requests are a small POST and a Messages
// call as Anthropic's SDK writes it (JSON, the model after a few KB of
// messages), which the pacer reads for its model.
func BenchmarkOverhead(b *testing.B) {
	messages := `{"max_tokens":1024,"messages":[{"role":"user","content":"` + strings.Repeat("Summarise this. ", 200) + `"}],"model":"claude-sonnet-4-5"}`
	for _, rc := range []struct {
		name, contentType, body string
	}{
		{"small", "", `{"max_tokens":16}`},
		{"messages", "application/json", messages},
	} {
		for _, bc := range []struct {
			name string
			rt   http.RoundTripper
		}{
			{"bare", cannedRT{}},
			{"retry", Chain(cannedRT{}, Retry())},
			{"pace", Chain(cannedRT{}, Pace())},
			{"chain", New(cannedRT{})},
		} {
			b.Run(rc.name+"/"+bc.name, func(b *testing.B) {
				req, _ := http.NewRequest("POST", "http://api.test/v1/messages", strings.NewReader(rc.body))
				req.Header.Set("Authorization", "Bearer k")
				if rc.contentType != "" {
					req.Header.Set("Content-Type", rc.contentType)
				}
				b.ReportAllocs()
				for b.Loop() {
					r := *req
					r.Body, _ = req.GetBody()
					resp, err := bc.rt.RoundTrip(&r)
					if err != nil {
						b.Fatal(err)
					}
					io.Copy(io.Discard, resp.Body)
					resp.Body.Close()
				}
			})
		}
	}
}

// The default chain allocates nothing per request that the bare transport
// does not, once warm: a plain request, a Gemini call (the model in the
// path) and a JSON call read for its model, whose only extra allocations
// are its own GetBody's.
func TestChainAllocatesNothing(t *testing.T) {
	getBodyAllocs := func(req *http.Request) float64 {
		return testing.AllocsPerRun(100, func() {
			rc, _ := req.GetBody()
			rc.Close()
		})
	}
	for _, tc := range []struct {
		name, url, contentType string
		readsBody              bool
	}{
		{"plain", "http://api.test/v1/x", "", false},
		{"model in the path", "http://api.test/v1beta/models/gemini-2.5-flash:generateContent", "application/json", false},
		{"model in the body", "http://api.test/v1/messages", "application/json", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			req, _ := http.NewRequest("POST", tc.url, strings.NewReader(`{"model":"claude-sonnet-4-5","max_tokens":16}`))
			req.Header.Set("Authorization", "Bearer k")
			if tc.contentType != "" {
				req.Header.Set("Content-Type", tc.contentType)
			}
			allocs := func(rt http.RoundTripper) float64 {
				return testing.AllocsPerRun(200, func() {
					r := *req
					r.Body, _ = req.GetBody()
					resp, err := rt.RoundTrip(&r)
					if err != nil {
						t.Fatal(err)
					}
					io.Copy(io.Discard, resp.Body)
					resp.Body.Close()
				})
			}
			want := allocs(cannedRT{})
			if tc.readsBody {
				want += getBodyAllocs(req)
			}
			if got := allocs(New(cannedRT{})); got > want {
				t.Errorf("%.1f allocations per request through New, want %.1f (the bare transport's and GetBody's)", got, want)
			}
		})
	}
}
