package integration_test

import (
	"context"
	"errors"
	"io"
	"net/http"
	"strconv"

	"github.com/anthropics/anthropic-sdk-go"
	anthropicoption "github.com/anthropics/anthropic-sdk-go/option"
	"github.com/openai/openai-go/v3"
	openaioption "github.com/openai/openai-go/v3/option"
	goopenai "github.com/sashabaranov/go-openai"
	"google.golang.org/genai"
)

// An sdk drives one vendor SDK, configured as docs/sdks.md says, over an
// *http.Client of the test's making.
type sdk struct {
	name string
	// retries lists the settings of the SDK's own retry loop to test, as a
	// number of retries or sdkDefault.
	retries []int

	// call makes one non-streaming call and returns the reply's text.
	call func(ctx context.Context, hc *http.Client, baseURL, model string, retries int) (string, error)
	// stream makes one streaming call, handing each piece of text to
	// onText as it arrives.
	stream func(ctx context.Context, hc *http.Client, baseURL, model string, retries int, onText func(string)) error
	// status returns the HTTP status carried by the SDK's own error type.
	status func(err error) (int, bool)
}

// sdkDefault leaves an SDK's retry setting as it comes.
const sdkDefault = -1

func retriesName(n int) string {
	if n == sdkDefault {
		return "default"
	}
	return strconv.Itoa(n)
}

var anthropicSDK = &sdk{
	name:    "anthropic-sdk-go",
	retries: []int{0, sdkDefault}, // default: 2
	call: func(ctx context.Context, hc *http.Client, baseURL, model string, retries int) (string, error) {
		client := anthropicClient(hc, baseURL, retries)
		msg, err := client.Messages.New(ctx, anthropicParams(model))
		if err != nil {
			return "", err
		}
		return msg.Content[0].Text, nil
	},
	stream: func(ctx context.Context, hc *http.Client, baseURL, model string, retries int, onText func(string)) error {
		client := anthropicClient(hc, baseURL, retries)
		s := client.Messages.NewStreaming(ctx, anthropicParams(model))
		defer s.Close()
		for s.Next() {
			if d, ok := s.Current().AsAny().(anthropic.ContentBlockDeltaEvent); ok {
				onText(d.Delta.Text)
			}
		}
		return s.Err()
	},
	status: func(err error) (int, bool) {
		if e, ok := errors.AsType[*anthropic.Error](err); ok {
			return e.StatusCode, true
		}
		return 0, false
	},
}

func anthropicClient(hc *http.Client, baseURL string, retries int) anthropic.Client {
	opts := []anthropicoption.RequestOption{
		anthropicoption.WithHTTPClient(hc),
		anthropicoption.WithAPIKey("sk-ant-api03-test"),
		anthropicoption.WithBaseURL(baseURL),
	}
	if retries != sdkDefault {
		opts = append(opts, anthropicoption.WithMaxRetries(retries))
	}
	return anthropic.NewClient(opts...)
}

func anthropicParams(model string) anthropic.MessageNewParams {
	return anthropic.MessageNewParams{
		Model:     anthropic.Model(model),
		MaxTokens: 1024,
		Messages:  []anthropic.MessageParam{anthropic.NewUserMessage(anthropic.NewTextBlock("Say hello."))},
	}
}

var openaiSDK = &sdk{
	name:    "openai-go",
	retries: []int{0, sdkDefault}, // default: 2
	call: func(ctx context.Context, hc *http.Client, baseURL, model string, retries int) (string, error) {
		client := openaiClient(hc, baseURL, retries)
		cc, err := client.Chat.Completions.New(ctx, openaiParams(model))
		if err != nil {
			return "", err
		}
		return cc.Choices[0].Message.Content, nil
	},
	stream: func(ctx context.Context, hc *http.Client, baseURL, model string, retries int, onText func(string)) error {
		client := openaiClient(hc, baseURL, retries)
		s := client.Chat.Completions.NewStreaming(ctx, openaiParams(model))
		defer s.Close()
		for s.Next() {
			if ch := s.Current().Choices; len(ch) > 0 && ch[0].Delta.Content != "" {
				onText(ch[0].Delta.Content)
			}
		}
		return s.Err()
	},
	status: func(err error) (int, bool) {
		if e, ok := errors.AsType[*openai.Error](err); ok {
			return e.StatusCode, true
		}
		return 0, false
	},
}

func openaiClient(hc *http.Client, baseURL string, retries int) openai.Client {
	opts := []openaioption.RequestOption{
		openaioption.WithHTTPClient(hc),
		openaioption.WithAPIKey("sk-proj-test"),
		openaioption.WithBaseURL(baseURL + "/v1/"),
	}
	if retries != sdkDefault {
		opts = append(opts, openaioption.WithMaxRetries(retries))
	}
	return openai.NewClient(opts...)
}

func openaiParams(model string) openai.ChatCompletionNewParams {
	return openai.ChatCompletionNewParams{
		Model:    model,
		Messages: []openai.ChatCompletionMessageParamUnion{openai.UserMessage("Say hello.")},
	}
}

var goopenaiSDK = &sdk{
	name:    "go-openai",
	retries: []int{sdkDefault}, // it has no retry loop
	call: func(ctx context.Context, hc *http.Client, baseURL, model string, _ int) (string, error) {
		resp, err := goopenaiClient(hc, baseURL).CreateChatCompletion(ctx, goopenaiRequest(model, false))
		if err != nil {
			return "", err
		}
		return resp.Choices[0].Message.Content, nil
	},
	stream: func(ctx context.Context, hc *http.Client, baseURL, model string, _ int, onText func(string)) error {
		s, err := goopenaiClient(hc, baseURL).CreateChatCompletionStream(ctx, goopenaiRequest(model, true))
		if err != nil {
			return err
		}
		defer s.Close()
		for {
			chunk, err := s.Recv()
			if errors.Is(err, io.EOF) {
				return nil
			}
			if err != nil {
				return err
			}
			if len(chunk.Choices) > 0 && chunk.Choices[0].Delta.Content != "" {
				onText(chunk.Choices[0].Delta.Content)
			}
		}
	},
	status: func(err error) (int, bool) {
		// A RequestError wraps an error body go-openai could not read as
		// OpenAI's, and holds the status; an APIError is OpenAI's own.
		if e, ok := errors.AsType[*goopenai.RequestError](err); ok {
			return e.HTTPStatusCode, true
		}
		if e, ok := errors.AsType[*goopenai.APIError](err); ok {
			return e.HTTPStatusCode, true
		}
		return 0, false
	},
}

func goopenaiClient(hc *http.Client, baseURL string) *goopenai.Client {
	cfg := goopenai.DefaultConfig("sk-proj-test")
	cfg.BaseURL = baseURL + "/v1"
	cfg.HTTPClient = hc
	return goopenai.NewClientWithConfig(cfg)
}

func goopenaiRequest(model string, stream bool) goopenai.ChatCompletionRequest {
	return goopenai.ChatCompletionRequest{
		Model:    model,
		Messages: []goopenai.ChatCompletionMessage{{Role: goopenai.ChatMessageRoleUser, Content: "Say hello."}},
		Stream:   stream,
	}
}

var genaiSDK = &sdk{
	name: "genai",
	// Its retry loop is off by default; on, it ignores X-Should-Retry.
	retries: []int{sdkDefault, 2},
	call: func(ctx context.Context, hc *http.Client, baseURL, model string, retries int) (string, error) {
		client, err := genaiClient(ctx, hc, baseURL, retries)
		if err != nil {
			return "", err
		}
		resp, err := client.Models.GenerateContent(ctx, model, genai.Text("Say hello."), nil)
		if err != nil {
			return "", err
		}
		return resp.Text(), nil
	},
	stream: func(ctx context.Context, hc *http.Client, baseURL, model string, retries int, onText func(string)) error {
		client, err := genaiClient(ctx, hc, baseURL, retries)
		if err != nil {
			return err
		}
		for resp, err := range client.Models.GenerateContentStream(ctx, model, genai.Text("Say hello."), nil) {
			if err != nil {
				return err
			}
			onText(resp.Text())
		}
		return nil
	},
	status: func(err error) (int, bool) {
		if e, ok := errors.AsType[genai.APIError](err); ok {
			return e.Code, true
		}
		return 0, false
	},
}

func genaiClient(ctx context.Context, hc *http.Client, baseURL string, retries int) (*genai.Client, error) {
	cfg := &genai.ClientConfig{
		APIKey:      "AIzaSy-test",
		Backend:     genai.BackendGeminiAPI,
		HTTPClient:  hc,
		HTTPOptions: genai.HTTPOptions{BaseURL: baseURL},
	}
	if retries != sdkDefault {
		attempts := int32(retries + 1)
		cfg.HTTPOptions.RetryOptions = &genai.HTTPRetryOptions{Attempts: &attempts}
	}
	return genai.NewClient(ctx, cfg)
}
