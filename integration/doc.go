// Package integration proves pacehttp with the real SDKs of the AI vendors
// (Anthropic's, OpenAI's openai-go and the community go-openai, Google's
// genai) against fakes that answer exactly as Anthropic, OpenAI, Gemini,
// xAI, DeepSeek and a bare OpenAI-compatible proxy do, served in memory so
// that the vendors' waits pass on a testing/synctest clock. It also
// compiles every Go snippet of the README and of docs/*.md.
//
// It is a module of its own so that a program importing only pacehttp
// builds none of the SDKs. It holds tests and examples only; see
// ../docs/sdks.md for the guide they back.
package integration
