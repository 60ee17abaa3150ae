// Package integration proves pacehttp with the real SDKs of the AI vendors
// (Anthropic, OpenAI's openai-go and the community go-openai, Google's genai)
// and with plain net/http, against fakes of their APIs on loopback.
//
// It is a module of its own so that a program importing only pacehttp
// builds none of the SDKs. It holds tests and examples only; see
// ../docs/sdks.md for the guide they back.
package integration
