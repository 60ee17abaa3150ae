package pacehttp

import (
	"bytes"
	"errors"
	"io"
	"net/http"
	"strings"
	"testing"
)

// brokenAfter reads n bytes, then fails.
type brokenAfter struct{ n int }

func (r *brokenAfter) Read(p []byte) (int, error) {
	if r.n == 0 {
		return 0, errors.New("disk gone")
	}
	k := min(len(p), r.n)
	r.n -= k
	return k, nil
}

func TestBodyPeek(t *testing.T) {
	big := strings.Repeat("x", maxPeek+10)
	tests := []struct {
		name    string
		body    string
		getBody func() (io.ReadCloser, error)
		want    string
		ok      bool
	}{
		{name: "small", body: `{"model":"m"}`, want: `{"model":"m"}`, ok: true},
		{name: "grows past the pooled size", body: strings.Repeat("y", 100<<10), want: strings.Repeat("y", 100<<10), ok: true},
		{name: "cut at maxPeek", body: big, want: big[:maxPeek], ok: true},
		{name: "no GetBody", body: "abc", getBody: func() (io.ReadCloser, error) { return nil, nil }},
		{name: "GetBody fails", body: "abc", getBody: func() (io.ReadCloser, error) { return nil, errors.New("gone") }},
		{name: "read fails", body: "abcdef", getBody: func() (io.ReadCloser, error) { return io.NopCloser(&brokenAfter{n: 3}), nil }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req, _ := http.NewRequest("POST", "http://api.test/", strings.NewReader(tt.body))
			calls := 0
			getBody := req.GetBody
			if tt.getBody != nil {
				getBody = tt.getBody
			}
			req.GetBody = func() (io.ReadCloser, error) { calls++; return getBody() }
			p := bodyPeek{req: req}
			defer p.release()
			for range 2 {
				b, ok := p.bytes()
				if ok != tt.ok || !bytes.Equal(b, []byte(tt.want)) {
					t.Fatalf("bytes() = %d bytes, %v; want %d bytes, %v", len(b), ok, len(tt.want), tt.ok)
				}
			}
			if calls != 1 {
				t.Errorf("GetBody called %d times, want once", calls)
			}
		})
	}
	req, _ := http.NewRequest("GET", "http://api.test/", nil)
	p := bodyPeek{req: req}
	if _, ok := p.bytes(); ok {
		t.Error("a request without a body peeked")
	}
	p.release()
}
