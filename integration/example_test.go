package integration_test

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"time"

	"github.com/anthropics/anthropic-sdk-go"
	anthropicoption "github.com/anthropics/anthropic-sdk-go/option"
	"github.com/openai/openai-go/v3"
	openaioption "github.com/openai/openai-go/v3/option"
	"github.com/pacehttp/pacehttp"
	goopenai "github.com/sashabaranov/go-openai"
	"google.golang.org/genai"
)

// The vendors' answers, as the examples' fake sends them.
const (
	anthropicRateLimited = `{"type":"error","error":{"type":"rate_limit_error","message":"Number of request tokens has exceeded your per-minute rate limit"}}`
	anthropicMessage     = `{"id":"msg_01","type":"message","role":"assistant","model":"claude-sonnet-4-5","content":[{"type":"text","text":"Hello!"}],"stop_reason":"end_turn","stop_sequence":null,"usage":{"input_tokens":9,"output_tokens":3}}`

	openaiRateLimited = `{"error":{"message":"Rate limit reached for gpt-4o-mini on requests per min (RPM)","type":"requests","param":null,"code":"rate_limit_exceeded"}}`
	openaiCompletion  = `{"id":"chatcmpl-1","object":"chat.completion","created":1764194400,"model":"gpt-4o-mini","choices":[{"index":0,"message":{"role":"assistant","content":"Hello!","refusal":null},"logprobs":null,"finish_reason":"stop"}],"usage":{"prompt_tokens":9,"completion_tokens":3,"total_tokens":12}}`

	googleRateLimited = `{"error":{"code":429,"message":"Resource has been exhausted (e.g. check quota).","status":"RESOURCE_EXHAUSTED","details":[{"@type":"type.googleapis.com/google.rpc.RetryInfo","retryDelay":"0s"}]}}`
	googleResponse    = `{"candidates":[{"content":{"role":"model","parts":[{"text":"Hello!"}]},"finishReason":"STOP","index":0}],"usageMetadata":{"promptTokenCount":9,"candidatesTokenCount":3,"totalTokenCount":12},"modelVersion":"gemini-2.5-flash"}`
)

// vendorAPI stands in for a vendor's API: it refuses the first request
// with a 429 and Retry-After: 0, then answers every request with ok.
func vendorAPI(rateLimited, ok string) *httptest.Server {
	var seen atomic.Int32
	return httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		if seen.Add(1) == 1 {
			w.Header().Set("Retry-After", "0")
			w.WriteHeader(http.StatusTooManyRequests)
			io.WriteString(w, rateLimited)
			return
		}
		io.WriteString(w, ok)
	}))
}

// retries prints each retry pacehttp makes.
func retries(e pacehttp.Event) {
	if e.Kind == pacehttp.EventRetry {
		fmt.Println("pacehttp retried after", e.Reason)
	}
}

func Example_anthropic() {
	srv := vendorAPI(anthropicRateLimited, anthropicMessage)
	defer srv.Close()

	httpClient := pacehttp.NewClient(pacehttp.WithMaxAttempts(5), pacehttp.WithHook(retries))
	client := anthropic.NewClient(
		anthropicoption.WithHTTPClient(httpClient),
		anthropicoption.WithMaxRetries(0), // pacehttp retries; the SDK need not
		anthropicoption.WithAPIKey("sk-ant-example"),
		anthropicoption.WithBaseURL(srv.URL), // only to reach the fake
	)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	msg, err := client.Messages.New(ctx, anthropic.MessageNewParams{
		Model:     "claude-sonnet-4-5",
		MaxTokens: 1024,
		Messages:  []anthropic.MessageParam{anthropic.NewUserMessage(anthropic.NewTextBlock("Say hello."))},
	})
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(msg.Content[0].Text)
	// Output:
	// pacehttp retried after status 429
	// Hello!
}

func Example_openai() {
	srv := vendorAPI(openaiRateLimited, openaiCompletion)
	defer srv.Close()

	httpClient := pacehttp.NewClient(pacehttp.WithMaxAttempts(5), pacehttp.WithHook(retries))
	client := openai.NewClient(
		openaioption.WithHTTPClient(httpClient),
		openaioption.WithMaxRetries(0), // pacehttp retries; the SDK need not
		openaioption.WithAPIKey("sk-example"),
		openaioption.WithBaseURL(srv.URL+"/v1/"), // only to reach the fake
	)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cc, err := client.Chat.Completions.New(ctx, openai.ChatCompletionNewParams{
		Model:    "gpt-4o-mini",
		Messages: []openai.ChatCompletionMessageParamUnion{openai.UserMessage("Say hello.")},
	})
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(cc.Choices[0].Message.Content)
	// Output:
	// pacehttp retried after status 429
	// Hello!
}

func Example_genai() {
	srv := vendorAPI(googleRateLimited, googleResponse)
	defer srv.Close()

	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	client, err := genai.NewClient(ctx, &genai.ClientConfig{
		HTTPClient:  pacehttp.NewClient(pacehttp.WithMaxAttempts(5), pacehttp.WithHook(retries)),
		APIKey:      "example-key",
		Backend:     genai.BackendGeminiAPI,
		HTTPOptions: genai.HTTPOptions{BaseURL: srv.URL}, // only to reach the fake
	})
	if err != nil {
		fmt.Println(err)
		return
	}
	resp, err := client.Models.GenerateContent(ctx, "gemini-2.5-flash", genai.Text("Say hello."), nil)
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(resp.Text())
	// Output:
	// pacehttp retried after status 429
	// Hello!
}

func Example_goOpenAI() {
	srv := vendorAPI(openaiRateLimited, openaiCompletion)
	defer srv.Close()

	cfg := goopenai.DefaultConfig("sk-example")
	cfg.HTTPClient = pacehttp.NewClient(pacehttp.WithMaxAttempts(5), pacehttp.WithHook(retries))
	cfg.BaseURL = srv.URL + "/v1" // only to reach the fake
	client := goopenai.NewClientWithConfig(cfg)

	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	resp, err := client.CreateChatCompletion(ctx, goopenai.ChatCompletionRequest{
		Model:    "gpt-4o-mini",
		Messages: []goopenai.ChatCompletionMessage{{Role: goopenai.ChatMessageRoleUser, Content: "Say hello."}},
	})
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(resp.Choices[0].Message.Content)
	// Output:
	// pacehttp retried after status 429
	// Hello!
}

func Example_netHTTP() {
	srv := vendorAPI(openaiRateLimited, `{"ok":true}`)
	defer srv.Close()

	client := pacehttp.NewClient(pacehttp.WithMaxAttempts(5), pacehttp.WithHook(retries))
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, srv.URL+"/v1/things", strings.NewReader(`{"say":"hello"}`))
	if err != nil {
		fmt.Println(err)
		return
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := client.Do(req)
	if err != nil {
		fmt.Println(err)
		return
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	fmt.Println(resp.StatusCode, string(body))
	// Output:
	// pacehttp retried after status 429
	// 200 {"ok":true}
}
