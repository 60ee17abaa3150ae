package pacehttp

import (
	"bytes"
	"net/http"
	"strings"
	"testing"
)

func TestJSONModel(t *testing.T) {
	tests := []struct {
		body, want string
	}{
		{`{"model":"gpt-4o","messages":[]}`, "gpt-4o"},
		{`{"max_tokens":16,"messages":[{"role":"user","content":"hi"}],"model":"claude-sonnet-4"}`, "claude-sonnet-4"},
		{" \n{ \"model\" : \"a\" }", "a"},
		// Nested members and strings that merely hold the word are skipped.
		{`{"tools":[{"input_schema":{"properties":{"model":{"type":"string"}}}}],"model":"top"}`, "top"},
		{`{"contents":[{"role":"model","parts":[]}],"model":"m"}`, "m"},
		{`{"prompt":"\"model\":\"fake\"","model":"real"}`, "real"},
		{`{"a":"x\\","model":"after-escape"}`, "after-escape"},
		{`{"n":-1.5e3,"ok":true,"nil":null,"model":"after-literals"}`, "after-literals"},
		// No model, or not a string, or not an object: none.
		{`{"messages":[]}`, ""},
		{`{"model":42}`, ""},
		{`{"model":{"name":"x"}}`, ""},
		{`["model","x"]`, ""},
		{`model=x`, ""},
		{``, ""},
		{`{"model":"unterminated`, ""},
		{`{"a":[1,2,{"b":"c"}`, ""},
		{`{"model":"` + strings.Repeat("x", 300) + `"}`, ""},
	}
	for _, tt := range tests {
		if got := string(jsonModel([]byte(tt.body))); got != tt.want {
			t.Errorf("jsonModel(%.60q) = %q, want %q", tt.body, got, tt.want)
		}
	}
}

func TestPathModel(t *testing.T) {
	tests := []struct{ path, want string }{
		{"/v1beta/models/gemini-2.0-flash:generateContent", "gemini-2.0-flash"},
		{"/v1beta/models/gemini-2.0-flash:streamGenerateContent", "gemini-2.0-flash"},
		{"/v1/projects/p/locations/l/publishers/google/models/gemini-pro:predict", "gemini-pro"},
		{"/v1/models/gpt-4o", ""}, // the model's own resource, not a call to it
		{"/v1/models", ""},
		{"/v1/chat/completions", ""},
	}
	for _, tt := range tests {
		if got := pathModel(tt.path); got != tt.want {
			t.Errorf("pathModel(%q) = %q, want %q", tt.path, got, tt.want)
		}
	}
}

func TestPartitionKeyModel(t *testing.T) {
	post := func(ctype, body string) *http.Request {
		req, _ := http.NewRequest("POST", "https://api.test/v1/messages", strings.NewReader(body))
		req.Header.Set("Content-Type", ctype)
		req.Header.Set("X-Api-Key", "k")
		return req
	}
	tests := []struct {
		name    string
		req     *http.Request
		byModel bool
		want    string
	}{
		{"JSON body", post("application/json", `{"model":"m1"}`), true, "m1"},
		{"JSON with charset", post("application/json; charset=utf-8", `{"model":"m1"}`), true, "m1"},
		{"not JSON", post("text/plain", `{"model":"m1"}`), true, ""},
		{"by model off", post("application/json", `{"model":"m1"}`), false, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			body := bodyPeek{req: tt.req}
			host, cred, model := partitionKey(tt.req, nil, tt.byModel, &body)
			body.release()
			if host != "api.test" || cred != "k" || model.String() != tt.want {
				t.Errorf("key (%q, %q, %q), want (api.test, k, %q)", host, cred, model, tt.want)
			}
			// The body the transport will send is untouched.
			b := make([]byte, 64)
			n, _ := tt.req.Body.Read(b)
			if !strings.Contains(string(b[:n]), "m1") {
				t.Errorf("request body read: %q left", b[:n])
			}
		})
	}
}

// FuzzJSONModel: any body, however malformed, gives a model or none, never
// a panic, and a model is always text found in the body.
func FuzzJSONModel(f *testing.F) {
	for _, s := range []string{`{"model":"gpt-4o"}`, `{"a":[{"b":"}"}],"model":"x"}`, `{"model":"\"`, `{`, `[]`, `{"a":tru`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		m := jsonModel(body)
		if len(m) > 256 {
			t.Fatalf("model of %d bytes", len(m))
		}
		if len(m) > 0 && !bytes.Contains(body, m) {
			t.Fatalf("model %q not in the body", m)
		}
	})
}
