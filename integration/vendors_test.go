package integration_test

import (
	"bytes"
	"context"
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

// A vendor is one API as the article's users meet it: a fake that answers
// as the vendor does, the model called, and the SDKs that call it.
type vendor struct {
	name  string
	model string
	// newAPI returns the vendor's API refusing its first refusals calls.
	newAPI func(refusals int) *fakeAPI
	// status is the refusal's status, as the SDK's error carries it when
	// pacehttp gives up.
	status int
	sdks   []*sdk
	// padded: the vendor's answers start with padding while a call
	// queues, which must reach the SDK untouched.
	padded bool
	// undecodable names the SDKs that cannot decode the vendor's error
	// body, and so return an error of their own without the status.
	undecodable string
}

var vendors = []vendor{
	{
		name: "anthropic-429", model: "claude-sonnet-4-5", status: http.StatusTooManyRequests,
		newAPI: func(n int) *fakeAPI { return newAnthropicAPI(n, http.StatusTooManyRequests) },
		sdks:   []*sdk{anthropicSDK},
	},
	{
		name: "anthropic-529", model: "claude-haiku-4-5", status: 529,
		newAPI: func(n int) *fakeAPI { return newAnthropicAPI(n, 529) },
		sdks:   []*sdk{anthropicSDK},
	},
	{
		name: "openai-requests", model: "gpt-4o-mini", status: http.StatusTooManyRequests,
		newAPI: func(n int) *fakeAPI { return newOpenAIAPI(n, "requests") },
		sdks:   []*sdk{openaiSDK, goopenaiSDK},
	},
	{
		name: "openai-tokens", model: "gpt-4.1", status: http.StatusTooManyRequests,
		newAPI: func(n int) *fakeAPI { return newOpenAIAPI(n, "tokens") },
		sdks:   []*sdk{openaiSDK, goopenaiSDK},
	},
	{
		name: "gemini", model: "gemini-2.5-flash", status: http.StatusTooManyRequests,
		newAPI: newGeminiAPI,
		sdks:   []*sdk{genaiSDK},
	},
	{
		name: "xai", model: "grok-4", status: http.StatusTooManyRequests,
		newAPI: newXAIAPI,
		sdks:   []*sdk{openaiSDK, goopenaiSDK},
		// openai-go expects "error" to be an object; xAI's is a string.
		undecodable: "openai-go",
	},
	{
		name: "deepseek", model: "deepseek-chat", status: http.StatusTooManyRequests,
		newAPI: newDeepSeekAPI,
		sdks:   []*sdk{openaiSDK, goopenaiSDK},
		padded: true,
	},
	{
		name: "bare-proxy", model: "gpt-4o-mini", status: http.StatusTooManyRequests,
		newAPI: newBareProxy,
		sdks:   []*sdk{openaiSDK, goopenaiSDK},
	},
}

// baseURL is where the SDKs send their calls; servePipes ignores the host.
const baseURL = "http://api.vendor.test"

// TestVendorAnswersAfterRefusals: each vendor refuses a call twice in its
// own words, then answers. pacehttp waits as asked (or backs off when
// nothing is said), the call succeeds, and the server sees exactly three
// attempts, all the same call: the SDK's own retry loop, at 0 or at its
// default, never saw a refusal. A streamed answer reaches the caller event
// by event, and every answer reaches the SDK byte for byte, DeepSeek's
// padding included. The tests run in a synctest bubble: the vendors' waits
// (8s for Anthropic, 17s for Gemini) pass on its clock.
func TestVendorAnswersAfterRefusals(t *testing.T) {
	for _, v := range vendors {
		for _, s := range v.sdks {
			for _, retries := range s.retries {
				for _, streaming := range []bool{false, true} {
					mode := "call"
					if streaming {
						mode = "stream"
					}
					name := fmt.Sprintf("%s/%s/retries=%s/%s", v.name, s.name, retriesName(retries), mode)
					t.Run(name, func(t *testing.T) {
						synctest.Test(t, func(t *testing.T) { testAnswerAfterRefusals(t, v, s, retries, streaming) })
					})
				}
			}
		}
	}
}

func testAnswerAfterRefusals(t *testing.T, v vendor, s *sdk, retries int, streaming bool) {
	const refusals = 2
	api := v.newAPI(refusals)
	tap := &bodyTap{next: pacehttp.New(servePipes(t, api), pacehttp.WithMaxAttempts(5))}
	hc := &http.Client{Transport: tap}
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Minute)
	defer cancel()

	var text strings.Builder
	var firstAt time.Time
	var err error
	if streaming {
		err = s.stream(ctx, hc, baseURL, v.model, retries, func(piece string) {
			if firstAt.IsZero() {
				firstAt = time.Now()
			}
			text.WriteString(piece)
		})
	} else {
		var got string
		got, err = s.call(ctx, hc, baseURL, v.model, retries)
		text.WriteString(got)
	}
	if err != nil {
		t.Fatalf("call failed after %d attempts: %v", api.attempts(), err)
	}
	if got := text.String(); got != "Hello!" {
		t.Errorf("reply = %q, want %q", got, "Hello!")
	}
	if n := api.attempts(); n != refusals+1 {
		t.Errorf("server saw %d attempts, want %d (%d refusals, then the answer)", n, refusals+1, refusals)
	}
	api.checkOneCall(t)

	synctest.Wait() // the server's handler may return after the SDK is done
	sent, finished := api.lastAnswer()
	got := tap.answer()
	if !bytes.Equal(got, sent) {
		t.Errorf("the SDK read an answer of %d bytes %q, the server sent %d bytes %q", len(got), got, len(sent), sent)
	}
	if v.padded && !deepSeekPadding(got) {
		t.Errorf("the answer the SDK read lacks the padding the server sent first: %q", got)
	}
	if streaming && !firstAt.Before(finished) {
		t.Errorf("first event reached the caller at %v, the answer was complete at %v: the stream was held back", firstAt, finished)
	}
}

// TestVendorGiveUpHandsBackTheRefusal: when every attempt is refused,
// pacehttp gives up after its WithMaxAttempts and hands back the vendor's
// last refusal marked X-Should-Retry: false, so the SDK's own retries, left
// at their default, do not start over: the server sees exactly 3 attempts,
// and the caller gets the SDK's own error with the vendor's status.
func TestVendorGiveUpHandsBackTheRefusal(t *testing.T) {
	for _, v := range vendors {
		for _, s := range v.sdks {
			t.Run(v.name+"/"+s.name, func(t *testing.T) {
				synctest.Test(t, func(t *testing.T) {
					api := v.newAPI(forever)
					hc := &http.Client{Transport: pacehttp.New(servePipes(t, api), pacehttp.WithMaxAttempts(3))}
					ctx, cancel := context.WithTimeout(t.Context(), 10*time.Minute)
					defer cancel()

					_, err := s.call(ctx, hc, baseURL, v.model, sdkDefault)
					code, ok := s.status(err)
					switch {
					case v.undecodable == s.name:
						if err == nil || ok {
							t.Fatalf("error = %v (%T); want the SDK's failure to decode the error body", err, err)
						}
						t.Logf("%s cannot decode %s's error body: %v", s.name, v.name, err)
					case !ok || code != v.status:
						t.Fatalf("error = %v (%T); want the SDK's error with status %d", err, err, v.status)
					}
					if n := api.attempts(); n != 3 {
						t.Errorf("server saw %d attempts, want exactly 3", n)
					}
					api.checkOneCall(t)
				})
			})
		}
	}
}

// TestShouldRetryHeaderPreventsMultiplication is the control of
// TestVendorGiveUpHandsBackTheRefusal: without the X-Should-Retry: false
// pacehttp puts on the answer it gives up on, the Stainless SDKs' two
// default retries each start pacehttp over, and the server sees three times
// as many attempts.
func TestShouldRetryHeaderPreventsMultiplication(t *testing.T) {
	for _, v := range []vendor{vendors[0], vendors[2]} { // anthropic-sdk-go, openai-go
		s := v.sdks[0]
		t.Run(v.name+"/"+s.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				api := v.newAPI(forever)
				hc := &http.Client{Transport: stripShouldRetry{pacehttp.New(servePipes(t, api), pacehttp.WithMaxAttempts(3))}}
				ctx, cancel := context.WithTimeout(t.Context(), 10*time.Minute)
				defer cancel()

				_, err := s.call(ctx, hc, baseURL, v.model, sdkDefault)
				if code, ok := s.status(err); !ok || code != v.status {
					t.Fatalf("error = %v; want the SDK's error with status %d", err, v.status)
				}
				if n := api.attempts(); n != 9 {
					t.Errorf("server saw %d attempts, want 9 (3 SDK attempts x 3 pacehttp attempts)", n)
				}
			})
		})
	}
}

// stripShouldRetry removes X-Should-Retry from every answer, to show what
// pacehttp's header prevents.
type stripShouldRetry struct{ next http.RoundTripper }

func (s stripShouldRetry) RoundTrip(req *http.Request) (*http.Response, error) {
	resp, err := s.next.RoundTrip(req)
	if resp != nil {
		resp.Header.Del("X-Should-Retry")
	}
	return resp, err
}

// bodyTap sits between an SDK and pacehttp and keeps a copy of the last 2xx
// body the SDK read, to compare with what the server sent.
type bodyTap struct {
	next http.RoundTripper

	mu   sync.Mutex
	last *bytes.Buffer
}

func (b *bodyTap) RoundTrip(req *http.Request) (*http.Response, error) {
	resp, err := b.next.RoundTrip(req)
	if err != nil || resp.StatusCode/100 != 2 {
		return resp, err
	}
	buf := new(bytes.Buffer)
	b.mu.Lock()
	b.last = buf
	b.mu.Unlock()
	resp.Body = tappedBody{Reader: io.TeeReader(resp.Body, lockedWriter{&b.mu, buf}), Closer: resp.Body}
	return resp, nil
}

func (b *bodyTap) answer() []byte {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.last == nil {
		return nil
	}
	return bytes.Clone(b.last.Bytes())
}

type tappedBody struct {
	io.Reader
	io.Closer
}

type lockedWriter struct {
	mu *sync.Mutex
	w  io.Writer
}

func (l lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}
