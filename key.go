package pacehttp

import (
	"bytes"
	"hash/maphash"
	"net/http"
	"strings"
)

// credentialHeaders are the request headers whose value identifies the
// caller's quota, in the order they are consulted.
var credentialHeaders = [...]string{"Authorization", "X-Api-Key", "Api-Key", "X-Goog-Api-Key"}

// partitionKey returns the raw parts of req's partition key: the host, the
// first credential header present, and the model the request names (when
// byModel), or the key of keyFunc alone.
//
// OpenAI, xAI and Anthropic limit each model separately, so a key's busy
// model must not slow its idle one: the model is read from a JSON body's
// top-level "model" field (through GetBody, so the request is untouched), or
// from a path of the form .../models/{model}:method, as Google's Gemini API
// names it. A model read from the body is valid until body is released.
func partitionKey(req *http.Request, keyFunc func(*http.Request) string, byModel bool, body *bodyPeek) (host, cred string, model modelName) {
	if keyFunc != nil {
		return "", keyFunc(req), modelName{}
	}
	host = req.URL.Host
	if host == "" {
		host = req.Host
	}
	for _, h := range credentialHeaders {
		if v := req.Header[h]; len(v) > 0 && v[0] != "" {
			cred = v[0]
			break
		}
	}
	if byModel {
		model = requestModel(req, body)
	}
	return host, cred, model
}

// A modelName is the model a request names, kept where it was found (a
// slice of the path or of the body) so that finding it copies nothing.
type modelName struct {
	path string
	body []byte
}

// hash returns the name's hash under seed; the same name hashes the same
// wherever found.
func (m modelName) hash(seed maphash.Seed) uint64 {
	if len(m.body) > 0 {
		return maphash.Bytes(seed, m.body)
	}
	return maphash.String(seed, m.path)
}

func (m modelName) String() string { return m.path + string(m.body) }

// requestModel returns the model req names, if any.
func requestModel(req *http.Request, body *bodyPeek) modelName {
	if m := pathModel(req.URL.Path); m != "" {
		return modelName{path: m}
	}
	if ct := req.Header["Content-Type"]; len(ct) == 0 || !strings.Contains(ct[0], "json") {
		return modelName{}
	}
	b, ok := body.bytes()
	if !ok {
		return modelName{}
	}
	return modelName{body: jsonModel(b)}
}

// pathModel returns the model segment of a path such as
// /v1beta/models/gemini-2.0-flash:generateContent, or "".
func pathModel(path string) string {
	const seg = "/models/"
	i := strings.Index(path, seg)
	if i < 0 {
		return ""
	}
	rest := path[i+len(seg):]
	end := strings.IndexAny(rest, ":/")
	if end < 0 {
		return "" // a model's own resource, not a call to it
	}
	return rest[:end]
}

// jsonModel returns the string value of the top-level "model" member of
// the JSON object b, escapes undecoded, or nil if there is none or b is not
// an object. It scans
// rather than decodes: members of nested objects, and strings that merely
// contain the word, are skipped.
func jsonModel(b []byte) []byte {
	s := scanner{b: b}
	if s.skipSpace(); !s.eat('{') {
		return nil
	}
	for {
		s.skipSpace()
		key, ok := s.str()
		if !ok {
			return nil
		}
		if s.skipSpace(); !s.eat(':') {
			return nil
		}
		s.skipSpace()
		if bytes.Equal(key, []byte("model")) {
			v, ok := s.str()
			if !ok || len(v) > 256 {
				return nil // not a model name we can use
			}
			return v
		}
		if !s.skipValue() {
			return nil
		}
		if s.skipSpace(); !s.eat(',') {
			return nil
		}
	}
}

// A scanner walks JSON text without decoding it.
type scanner struct {
	b []byte
	i int
}

func (s *scanner) skipSpace() {
	for s.i < len(s.b) && (s.b[s.i] == ' ' || s.b[s.i] == '\t' || s.b[s.i] == '\n' || s.b[s.i] == '\r') {
		s.i++
	}
}

func (s *scanner) eat(c byte) bool {
	if s.i < len(s.b) && s.b[s.i] == c {
		s.i++
		return true
	}
	return false
}

// str reads a string and returns its raw contents, escapes undecoded. It
// jumps from quote to quote: prompts make most of a body's bytes, and they
// are inside strings.
func (s *scanner) str() ([]byte, bool) {
	if !s.eat('"') {
		return nil, false
	}
	start := s.i
	for {
		j := bytes.IndexByte(s.b[s.i:], '"')
		if j < 0 {
			s.i = len(s.b)
			return nil, false
		}
		s.i += j
		// A quote after an odd run of backslashes is escaped.
		k := s.i
		for k > start && s.b[k-1] == '\\' {
			k--
		}
		s.i++
		if (s.i-1-k)%2 == 0 {
			return s.b[start : s.i-1], true
		}
	}
}

// skipValue skips one value of any kind.
func (s *scanner) skipValue() bool {
	if s.i >= len(s.b) {
		return false
	}
	switch s.b[s.i] {
	case '"':
		_, ok := s.str()
		return ok
	case '{', '[':
		depth := 0
		for s.i < len(s.b) {
			switch s.b[s.i] {
			case '"':
				if _, ok := s.str(); !ok {
					return false
				}
				continue
			case '{', '[':
				depth++
			case '}', ']':
				depth--
			}
			s.i++
			if depth == 0 {
				return true
			}
		}
		return false
	default: // a number, true, false or null
		for ; s.i < len(s.b); s.i++ {
			switch s.b[s.i] {
			case ',', '}', ']', ' ', '\t', '\r', '\n':
				return true
			}
		}
		return true
	}
}
