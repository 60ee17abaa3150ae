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
// binds: no retry, no wait.
func BenchmarkOverhead(b *testing.B) {
	for _, bc := range []struct {
		name string
		rt   http.RoundTripper
	}{
		{"bare", cannedRT{}},
		{"retry", Chain(cannedRT{}, Retry())},
		{"chain", New(cannedRT{})},
	} {
		b.Run(bc.name, func(b *testing.B) {
			req, _ := http.NewRequest("POST", "http://api.test/v1/messages", strings.NewReader(`{"max_tokens":16}`))
			req.Header.Set("Authorization", "Bearer k")
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
