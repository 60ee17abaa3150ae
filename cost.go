package pacehttp

import (
	"bytes"
	"net/http"
)

// defaultCost estimates a request's tokens without decoding it: about one
// token per four bytes of body (the usual rule of thumb for English text and
// JSON in LLM tokenizers), plus, when the limit counts the completion too
// (withOutput), the "max_tokens" value if the body has one, since such an
// API reserves the completion's maximum up front (OpenAI's does; Anthropic's
// input-token limit does not). It reads the body only through req.GetBody,
// so the request itself is untouched; a request without GetBody costs 1.
func defaultCost(req *http.Request, peek *bodyPeek, withOutput bool) int {
	body, ok := peek.bytes()
	if !ok {
		return 1
	}
	n := len(body)
	if req.ContentLength > int64(n) {
		n = int(min(req.ContentLength, 1<<40))
	}
	if !withOutput {
		return max(1, n/4)
	}
	return max(1, n/4+maxTokens(body))
}

var maxTokensKey = []byte(`"max_tokens"`)

// maxTokens returns the integer after the first "max_tokens": key in a JSON
// body, or 0. It is a scan, not a parse: a key of that name nested anywhere
// counts, which is fine for an estimate.
func maxTokens(body []byte) int {
	i := bytes.Index(body, maxTokensKey)
	if i < 0 {
		return 0
	}
	rest := body[i+len(maxTokensKey):]
	j := 0
	for j < len(rest) && (rest[j] == ' ' || rest[j] == '\t' || rest[j] == '\n' || rest[j] == '\r') {
		j++
	}
	if j == len(rest) || rest[j] != ':' {
		return 0
	}
	j++
	for j < len(rest) && (rest[j] == ' ' || rest[j] == '\t' || rest[j] == '\n' || rest[j] == '\r') {
		j++
	}
	v := 0
	for ; j < len(rest) && '0' <= rest[j] && rest[j] <= '9'; j++ {
		v = v*10 + int(rest[j]-'0')
		if v > 1<<30 {
			return 1 << 30
		}
	}
	return v
}
