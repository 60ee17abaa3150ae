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
