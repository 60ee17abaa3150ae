package integration_test

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/anthropics/anthropic-sdk-go"
	anthropicoption "github.com/anthropics/anthropic-sdk-go/option"
	"github.com/openai/openai-go/v3"
	openaioption "github.com/openai/openai-go/v3/option"
	goopenai "github.com/sashabaranov/go-openai"
	"google.golang.org/genai"
)

// An sdk drives one vendor SDK, configured as docs/sdks.md says, against a
// fake of that vendor's API. Every SDK keeps its own retries at their
// defaults: the point is that they do not multiply pacehttp's attempts.
type sdk struct {
	name string

	// rateLimited is the vendor's 429 body; ok its answer to call.
	rateLimited, ok string
	// first and rest are the stream stream reads; events is how many
	// events they hold in all.
	first, rest string
	events      int

	// call makes one non-streaming request and returns the reply's text.
	call func(ctx context.Context, c *http.Client, baseURL string) (string, error)
	// status returns the HTTP status carried by the SDK's own error type.
	status func(err error) (int, bool)
	// stream makes one streaming request and calls onEvent as each event
	// arrives.
	stream func(ctx context.Context, c *http.Client, baseURL string, onEvent func()) error
}

const (
	anthropicRateLimited = `{"type":"error","error":{"type":"rate_limit_error","message":"Number of request tokens has exceeded your per-minute rate limit"}}`
	anthropicMessage     = `{"id":"msg_01","type":"message","role":"assistant","model":"claude-sonnet-4-5","content":[{"type":"text","text":"Hello!"}],"stop_reason":"end_turn","stop_sequence":null,"usage":{"input_tokens":9,"output_tokens":3}}`

	openaiRateLimited = `{"error":{"message":"Rate limit reached for gpt-4o-mini on requests per min (RPM)","type":"requests","param":null,"code":"rate_limit_exceeded"}}`
	openaiCompletion  = `{"id":"chatcmpl-1","object":"chat.completion","created":1764194400,"model":"gpt-4o-mini","choices":[{"index":0,"message":{"role":"assistant","content":"Hello!","refusal":null},"logprobs":null,"finish_reason":"stop"}],"usage":{"prompt_tokens":9,"completion_tokens":3,"total_tokens":12}}`
	openaiChunkFirst  = "data: {\"id\":\"chatcmpl-1\",\"object\":\"chat.completion.chunk\",\"created\":1764194400,\"model\":\"gpt-4o-mini\",\"choices\":[{\"index\":0,\"delta\":{\"role\":\"assistant\",\"content\":\"Hel\"},\"finish_reason\":null}]}\n\n"
	openaiChunkRest   = "data: {\"id\":\"chatcmpl-1\",\"object\":\"chat.completion.chunk\",\"created\":1764194400,\"model\":\"gpt-4o-mini\",\"choices\":[{\"index\":0,\"delta\":{\"content\":\"lo!\"},\"finish_reason\":null}]}\n\n" +
		"data: {\"id\":\"chatcmpl-1\",\"object\":\"chat.completion.chunk\",\"created\":1764194400,\"model\":\"gpt-4o-mini\",\"choices\":[{\"index\":0,\"delta\":{},\"finish_reason\":\"stop\"}]}\n\n" +
		"data: [DONE]\n\n"

	googleRateLimited = `{"error":{"code":429,"message":"Resource has been exhausted (e.g. check quota).","status":"RESOURCE_EXHAUSTED","details":[{"@type":"type.googleapis.com/google.rpc.RetryInfo","retryDelay":"0s"}]}}`
	googleResponse    = `{"candidates":[{"content":{"role":"model","parts":[{"text":"Hello!"}]},"finishReason":"STOP","index":0}],"usageMetadata":{"promptTokenCount":9,"candidatesTokenCount":3,"totalTokenCount":12},"modelVersion":"gemini-2.5-flash"}`
)

var anthropicStream = [...]string{
	"event: message_start\ndata: {\"type\":\"message_start\",\"message\":{\"id\":\"msg_01\",\"type\":\"message\",\"role\":\"assistant\",\"model\":\"claude-sonnet-4-5\",\"content\":[],\"stop_reason\":null,\"stop_sequence\":null,\"usage\":{\"input_tokens\":9,\"output_tokens\":1}}}\n\n",
	"event: content_block_start\ndata: {\"type\":\"content_block_start\",\"index\":0,\"content_block\":{\"type\":\"text\",\"text\":\"\"}}\n\n" +
		"event: content_block_delta\ndata: {\"type\":\"content_block_delta\",\"index\":0,\"delta\":{\"type\":\"text_delta\",\"text\":\"Hello!\"}}\n\n" +
		"event: content_block_stop\ndata: {\"type\":\"content_block_stop\",\"index\":0}\n\n" +
		"event: message_delta\ndata: {\"type\":\"message_delta\",\"delta\":{\"stop_reason\":\"end_turn\",\"stop_sequence\":null},\"usage\":{\"output_tokens\":3}}\n\n" +
		"event: message_stop\ndata: {\"type\":\"message_stop\"}\n\n",
}

var googleStream = [...]string{
	"data: {\"candidates\":[{\"content\":{\"role\":\"model\",\"parts\":[{\"text\":\"Hel\"}]},\"index\":0}],\"modelVersion\":\"gemini-2.5-flash\"}\r\n\r\n",
	"data: {\"candidates\":[{\"content\":{\"role\":\"model\",\"parts\":[{\"text\":\"lo!\"}]},\"finishReason\":\"STOP\",\"index\":0}],\"usageMetadata\":{\"promptTokenCount\":9,\"candidatesTokenCount\":3,\"totalTokenCount\":12},\"modelVersion\":\"gemini-2.5-flash\"}\r\n\r\n",
}

func anthropicClient(c *http.Client, baseURL string) anthropic.Client {
	return anthropic.NewClient(
		anthropicoption.WithAPIKey("sk-ant-test"),
		anthropicoption.WithBaseURL(baseURL),
		anthropicoption.WithHTTPClient(c),
	)
}

func anthropicParams() anthropic.MessageNewParams {
	return anthropic.MessageNewParams{
		Model:     "claude-sonnet-4-5",
		MaxTokens: 1024,
		Messages:  []anthropic.MessageParam{anthropic.NewUserMessage(anthropic.NewTextBlock("Say hello."))},
	}
}

func openaiClient(c *http.Client, baseURL string) openai.Client {
	return openai.NewClient(
		openaioption.WithAPIKey("sk-test"),
		openaioption.WithBaseURL(baseURL+"/v1/"),
		openaioption.WithHTTPClient(c),
	)
}

func openaiParams() openai.ChatCompletionNewParams {
	return openai.ChatCompletionNewParams{
		Model:    "gpt-4o-mini",
		Messages: []openai.ChatCompletionMessageParamUnion{openai.UserMessage("Say hello.")},
	}
}

func genaiClient(ctx context.Context, c *http.Client, baseURL string) (*genai.Client, error) {
	return genai.NewClient(ctx, &genai.ClientConfig{
		APIKey:      "test-key",
		Backend:     genai.BackendGeminiAPI,
		HTTPClient:  c,
		HTTPOptions: genai.HTTPOptions{BaseURL: baseURL},
	})
}

func goopenaiClient(c *http.Client, baseURL string) *goopenai.Client {
	cfg := goopenai.DefaultConfig("sk-test")
	cfg.BaseURL = baseURL + "/v1"
	cfg.HTTPClient = c
	return goopenai.NewClientWithConfig(cfg)
}

func goopenaiRequest(stream bool) goopenai.ChatCompletionRequest {
	return goopenai.ChatCompletionRequest{
		Model:    "gpt-4o-mini",
		Messages: []goopenai.ChatCompletionMessage{{Role: goopenai.ChatMessageRoleUser, Content: "Say hello."}},
		Stream:   stream,
	}
}

var sdks = []sdk{
	{
		name:        "anthropic",
		rateLimited: anthropicRateLimited,
		ok:          anthropicMessage,
		first:       anthropicStream[0],
		rest:        anthropicStream[1],
		events:      6,
		call: func(ctx context.Context, c *http.Client, url string) (string, error) {
			client := anthropicClient(c, url)
			msg, err := client.Messages.New(ctx, anthropicParams())
			if err != nil {
				return "", err
			}
			return msg.Content[0].Text, nil
		},
		status: func(err error) (int, bool) {
			var e *anthropic.Error
			if errors.As(err, &e) {
				return e.StatusCode, true
			}
			return 0, false
		},
		stream: func(ctx context.Context, c *http.Client, url string, onEvent func()) error {
			client := anthropicClient(c, url)
			s := client.Messages.NewStreaming(ctx, anthropicParams())
			defer s.Close()
			for s.Next() {
				onEvent()
			}
			return s.Err()
		},
	},
	{
		name:        "openai-go",
		rateLimited: openaiRateLimited,
		ok:          openaiCompletion,
		first:       openaiChunkFirst,
		rest:        openaiChunkRest,
		events:      3,
		call: func(ctx context.Context, c *http.Client, url string) (string, error) {
			client := openaiClient(c, url)
			cc, err := client.Chat.Completions.New(ctx, openaiParams())
			if err != nil {
				return "", err
			}
			return cc.Choices[0].Message.Content, nil
		},
		status: func(err error) (int, bool) {
			var e *openai.Error
			if errors.As(err, &e) {
				return e.StatusCode, true
			}
			return 0, false
		},
		stream: func(ctx context.Context, c *http.Client, url string, onEvent func()) error {
			client := openaiClient(c, url)
			s := client.Chat.Completions.NewStreaming(ctx, openaiParams())
			defer s.Close()
			for s.Next() {
				onEvent()
			}
			return s.Err()
		},
	},
	{
		name:        "genai",
		rateLimited: googleRateLimited,
		ok:          googleResponse,
		first:       googleStream[0],
		rest:        googleStream[1],
		events:      2,
		call: func(ctx context.Context, c *http.Client, url string) (string, error) {
			client, err := genaiClient(ctx, c, url)
			if err != nil {
				return "", err
			}
			resp, err := client.Models.GenerateContent(ctx, "gemini-2.5-flash", genai.Text("Say hello."), nil)
			if err != nil {
				return "", err
			}
			return resp.Text(), nil
		},
		status: func(err error) (int, bool) {
			var e genai.APIError
			if errors.As(err, &e) {
				return e.Code, true
			}
			return 0, false
		},
		stream: func(ctx context.Context, c *http.Client, url string, onEvent func()) error {
			client, err := genaiClient(ctx, c, url)
			if err != nil {
				return err
			}
			for _, err := range client.Models.GenerateContentStream(ctx, "gemini-2.5-flash", genai.Text("Say hello."), nil) {
				if err != nil {
					return err
				}
				onEvent()
			}
			return nil
		},
	},
	{
		name:        "go-openai",
		rateLimited: openaiRateLimited,
		ok:          openaiCompletion,
		first:       openaiChunkFirst,
		rest:        openaiChunkRest,
		events:      3,
		call: func(ctx context.Context, c *http.Client, url string) (string, error) {
			resp, err := goopenaiClient(c, url).CreateChatCompletion(ctx, goopenaiRequest(false))
			if err != nil {
				return "", err
			}
			return resp.Choices[0].Message.Content, nil
		},
		status: func(err error) (int, bool) {
			var e *goopenai.APIError
			if errors.As(err, &e) {
				return e.HTTPStatusCode, true
			}
			return 0, false
		},
		stream: func(ctx context.Context, c *http.Client, url string, onEvent func()) error {
			s, err := goopenaiClient(c, url).CreateChatCompletionStream(ctx, goopenaiRequest(true))
			if err != nil {
				return err
			}
			defer s.Close()
			for {
				_, err := s.Recv()
				if errors.Is(err, io.EOF) {
					return nil
				}
				if err != nil {
					return err
				}
				onEvent()
			}
		},
	},
	{
		name:        "net/http",
		rateLimited: openaiRateLimited,
		ok:          `{"ok":true}`,
		first:       "data: 1\n\n",
		rest:        "data: 2\n\ndata: 3\n\n",
		events:      3,
		call: func(ctx context.Context, c *http.Client, url string) (string, error) {
			req, err := http.NewRequestWithContext(ctx, http.MethodPost, url+"/v1/things", strings.NewReader(`{"say":"hello"}`))
			if err != nil {
				return "", err
			}
			resp, err := c.Do(req)
			if err != nil {
				return "", err
			}
			defer resp.Body.Close()
			body, err := io.ReadAll(resp.Body)
			if err != nil {
				return "", err
			}
			if resp.StatusCode != http.StatusOK {
				return "", &statusError{code: resp.StatusCode, shouldRetry: resp.Header.Get("X-Should-Retry"), body: string(body)}
			}
			return string(body), nil
		},
		status: func(err error) (int, bool) {
			var e *statusError
			if errors.As(err, &e) && e.shouldRetry == "false" && e.body == openaiRateLimited {
				return e.code, true
			}
			return 0, false
		},
		stream: func(ctx context.Context, c *http.Client, url string, onEvent func()) error {
			req, err := http.NewRequestWithContext(ctx, http.MethodPost, url+"/v1/stream", strings.NewReader(`{"say":"hello"}`))
			if err != nil {
				return err
			}
			resp, err := c.Do(req)
			if err != nil {
				return err
			}
			defer resp.Body.Close()
			sc := bufio.NewScanner(resp.Body)
			for sc.Scan() {
				if strings.HasPrefix(sc.Text(), "data:") {
					onEvent()
				}
			}
			return sc.Err()
		},
	},
}

// statusError is what the plain net/http caller makes of a non-2xx answer:
// the status, pacehttp's X-Should-Retry and the body, as the server sent it.
type statusError struct {
	code        int
	shouldRetry string
	body        string
}

func (e *statusError) Error() string { return fmt.Sprintf("status %d: %s", e.code, e.body) }

// rateLimitedAnswer is the fake's 429: Retry-After: 0 (Google's RetryInfo
// sits in the body instead) so that the suite does not sleep.
func (s *sdk) rateLimitedAnswer() http.HandlerFunc {
	if s.name == "genai" {
		return reply(http.StatusTooManyRequests, s.rateLimited)
	}
	return reply(http.StatusTooManyRequests, s.rateLimited, "Retry-After", "0")
}

func TestRetriesUntilSuccess(t *testing.T) {
	for _, s := range sdks {
		t.Run(s.name, func(t *testing.T) {
			t.Parallel()
			f := newFake(t, s.rateLimitedAnswer(), s.rateLimitedAnswer(), reply(http.StatusOK, s.ok))
			ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
			defer cancel()

			got, err := s.call(ctx, pacedClient(t), f.URL())
			if err != nil {
				t.Fatalf("call: %v", err)
			}
			if want := "Hello!"; s.name != "net/http" && got != want {
				t.Errorf("reply text = %q, want %q", got, want)
			}
			if n := f.roundTrips(); n != 3 {
				t.Errorf("server saw %d round trips, want 3 (two 429s, then the answer)", n)
			}
			f.checkSameBodies(t)
			t.Logf("%s: success after two 429s: %d round trips", s.name, f.roundTrips())
		})
	}
}

func TestGivesUpWithSDKError(t *testing.T) {
	for _, s := range sdks {
		t.Run(s.name, func(t *testing.T) {
			t.Parallel()
			f := newFake(t, s.rateLimitedAnswer())
			ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
			defer cancel()

			_, err := s.call(ctx, pacedClient(t), f.URL())
			code, ok := s.status(err)
			if !ok || code != http.StatusTooManyRequests {
				t.Fatalf("error = %v (%T); want the SDK's own error type with status 429", err, err)
			}
			// pacehttp makes 3 attempts; the SDK's own retries, left on,
			// must not start over on top of them.
			if n := f.roundTrips(); n != 3 {
				t.Errorf("server saw %d round trips, want exactly 3", n)
			}
			f.checkSameBodies(t)
			t.Logf("%s: give up: %d round trips, error %T", s.name, f.roundTrips(), err)
		})
	}
}

func TestStreamsIncrementally(t *testing.T) {
	for _, s := range sdks {
		t.Run(s.name, func(t *testing.T) {
			t.Parallel()
			g := newGatedStream(s.first, s.rest)
			f := newFake(t, s.rateLimitedAnswer(), g.serve)
			ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
			defer cancel()

			events := 0
			err := s.stream(ctx, pacedClient(t), f.URL(), func() {
				events++
				if events == 1 {
					// The server is still holding the rest back: this event
					// was not buffered behind the end of the stream.
					if g.done() {
						t.Error("first event arrived only after the stream ended")
					}
					close(g.release)
				}
			})
			if err != nil {
				t.Fatalf("stream: %v", err)
			}
			if events != s.events {
				t.Errorf("got %d events, want %d", events, s.events)
			}
			if n := f.roundTrips(); n != 2 {
				t.Errorf("server saw %d round trips, want 2 (a 429, then the stream)", n)
			}
			f.checkSameBodies(t)
			t.Logf("%s: streaming after a 429: %d round trips, %d events", s.name, f.roundTrips(), events)
		})
	}
}

// stripShouldRetry removes pacehttp's X-Should-Retry from every answer, to
// show what it prevents.
type stripShouldRetry struct{ next http.RoundTripper }

func (s stripShouldRetry) RoundTrip(req *http.Request) (*http.Response, error) {
	resp, err := s.next.RoundTrip(req)
	if resp != nil {
		resp.Header.Del("X-Should-Retry")
	}
	return resp, err
}

// TestShouldRetryHeaderPreventsMultiplication is the control of
// TestGivesUpWithSDKError: without the header pacehttp adds when it gives
// up, the Stainless SDKs' own two retries each start pacehttp over, and the
// server sees three times as many requests.
func TestShouldRetryHeaderPreventsMultiplication(t *testing.T) {
	for _, s := range sdks[:2] { // anthropic and openai-go retry on their own
		t.Run(s.name, func(t *testing.T) {
			t.Parallel()
			f := newFake(t, s.rateLimitedAnswer())
			c := pacedClient(t)
			c.Transport = stripShouldRetry{c.Transport}

			_, err := s.call(t.Context(), c, f.URL())
			if code, ok := s.status(err); !ok || code != http.StatusTooManyRequests {
				t.Fatalf("error = %v; want the SDK's error with status 429", err)
			}
			if n := f.roundTrips(); n != 9 {
				t.Errorf("server saw %d round trips, want 9 (3 SDK attempts x 3 pacehttp attempts)", n)
			}
		})
	}
}
