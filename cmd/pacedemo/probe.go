package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"math"
	"net/http"
	"net/url"
	"os"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/pacehttp/pacehttp"
)

// A prober sends one request to a real API with a key read from the
// environment, and prints the rate-limit headers of the answer and the
// limits pacehttp's pacer learns from them: what it will do with that key
// before a batch is run. It never prints the key.
//
//	go run ./cmd/pacedemo -probe https://api.openai.com/v1/models
//	go run ./cmd/pacedemo -probe https://api.anthropic.com/v1/messages \
//	    -probe-body '{"model":"claude-haiku-4-5","max_tokens":1,"messages":[{"role":"user","content":"hi"}]}'
type prober struct {
	url  string
	body string // JSON to POST; empty: GET

	env  func(string) string // os.Getenv
	base http.RoundTripper   // nil: http.DefaultTransport
}

// newProber returns the -probe mode, reading keys from the environment.
func newProber() *prober { return &prober{env: os.Getenv} }

// flags registers -probe and -probe-body on fs.
func (p *prober) flags(fs *flag.FlagSet) {
	fs.StringVar(&p.url, "probe", "", "send one request to this `URL` with a key from the environment, print the limits its headers state, and exit")
	fs.StringVar(&p.body, "probe-body", "", "with -probe, POST this JSON `body` instead of a GET")
}

// asked reports whether -probe was given.
func (p *prober) asked() bool { return p.url != "" }

// A vendorKey says where a vendor's key is read from and how it is sent.
type vendorKey struct {
	host   string // the API's host, or "" for any other
	env    string // the environment variables holding the key, in order
	header string // the header carrying it
	bearer bool   // whether the header value is "Bearer " + key
	extra  []string
}

var vendorKeys = []vendorKey{
	{host: "api.anthropic.com", env: "ANTHROPIC_API_KEY", header: "X-Api-Key", extra: []string{"Anthropic-Version", "2023-06-01"}},
	{host: "api.openai.com", env: "OPENAI_API_KEY", header: "Authorization", bearer: true},
	{host: "generativelanguage.googleapis.com", env: "GEMINI_API_KEY GOOGLE_API_KEY", header: "X-Goog-Api-Key"},
	{host: "api.x.ai", env: "XAI_API_KEY", header: "Authorization", bearer: true},
	{host: "api.deepseek.com", env: "DEEPSEEK_API_KEY", header: "Authorization", bearer: true},
	{env: "PACEHTTP_PROBE_KEY", header: "Authorization", bearer: true},
}

func keyFor(host string) vendorKey {
	for _, k := range vendorKeys {
		if k.host == "" || strings.EqualFold(k.host, host) {
			return k
		}
	}
	panic("unreachable: the last vendorKey matches any host")
}

// probeTimeout bounds the probe's one request.
const probeTimeout = time.Minute

// run sends the request and prints what it learned to out, the
// command's standard output.
func (p *prober) run(out, _ io.Writer) error {
	ctx, cancel := context.WithTimeout(context.Background(), probeTimeout)
	defer cancel()
	u, err := url.Parse(p.url)
	if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
		return fmt.Errorf("-probe wants an http or https URL, got %q", p.url)
	}
	vk := keyFor(u.Hostname())
	var key, from string
	for _, name := range strings.Fields(vk.env) {
		if key = strings.TrimSpace(p.env(name)); key != "" {
			from = name
			break
		}
	}
	if key == "" {
		return fmt.Errorf("no key for %s: set %s", u.Hostname(), strings.Join(strings.Fields(vk.env), " or "))
	}

	method, body := http.MethodGet, io.Reader(nil)
	if p.body != "" {
		method, body = http.MethodPost, strings.NewReader(p.body)
	}
	req, err := http.NewRequestWithContext(ctx, method, u.String(), body)
	if err != nil {
		return err
	}
	value := key
	if vk.bearer {
		value = "Bearer " + key
	}
	req.Header.Set(vk.header, value)
	for i := 0; i+1 < len(vk.extra); i += 2 {
		req.Header.Set(vk.extra[i], vk.extra[i+1])
	}
	if p.body != "" {
		req.Header.Set("Content-Type", "application/json")
	}

	lim := &recordingLimiter{Limiter: pacehttp.NewLocalLimiter()}
	// The headers as the server sent them: pacehttp marks an answer it
	// hands back after a 429 with X-Should-Retry: false.
	raw := &headerTap{next: p.base}
	client := &http.Client{Transport: pacehttp.New(raw,
		pacehttp.WithMaxAttempts(1), // one request, the probe's
		pacehttp.WithLimiter(lim))}
	resp, err := client.Do(req)
	if err != nil {
		return errors.New(redact(err.Error(), key))
	}
	answer, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
	resp.Body.Close()

	w := &redactingWriter{w: out, key: key}
	fmt.Fprintf(w, "%s %s\n", method, redactURL(u))
	fmt.Fprintf(w, "key:    from %s, sent as %s (never printed)\n", from, vk.header)
	fmt.Fprintf(w, "status: %s\n", resp.Status)
	if resp.StatusCode >= 400 {
		fmt.Fprintf(w, "body:   %s\n", strings.TrimSpace(string(answer)))
	}

	header := raw.last()
	names := rateLimitHeaders(header)
	fmt.Fprintf(w, "\nrate-limit headers (%d):\n", len(names))
	for _, name := range names {
		for _, v := range header.Values(name) {
			fmt.Fprintf(w, "  %s: %s\n", strings.ToLower(name), v)
		}
	}
	if len(names) == 0 {
		fmt.Fprintln(w, "  none: pacehttp will learn the rate from the 429s themselves")
	}

	fmt.Fprintln(w, "\npacehttp learns:")
	learned := lim.calls()
	if len(learned) == 0 {
		fmt.Fprintln(w, "  nothing from this answer")
	}
	for _, c := range learned {
		fmt.Fprintf(w, "  %s\n", c)
	}
	return nil
}

// rateLimitHeaders returns the names of the headers that carry rate
// limits or retry hints, sorted.
func rateLimitHeaders(h http.Header) []string {
	var names []string
	for name := range h {
		n := strings.ToLower(name)
		if strings.Contains(n, "ratelimit") || strings.Contains(n, "rate-limit") ||
			strings.HasPrefix(n, "retry-after") || n == "x-should-retry" {
			names = append(names, name)
		}
	}
	slices.Sort(names)
	return names
}

// headerTap keeps a copy of the header of the last response from next.
type headerTap struct {
	next http.RoundTripper

	mu     sync.Mutex
	header http.Header
}

func (t *headerTap) RoundTrip(req *http.Request) (*http.Response, error) {
	next := t.next
	if next == nil {
		next = http.DefaultTransport
	}
	resp, err := next.RoundTrip(req)
	if err == nil {
		t.mu.Lock()
		t.header = resp.Header.Clone()
		t.mu.Unlock()
	}
	return resp, err
}

func (t *headerTap) last() http.Header {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.header
}

// recordingLimiter is the default Limiter, recording what the pacer sets
// in each budget: limits read from headers, and cool-downs.
type recordingLimiter struct {
	pacehttp.Limiter

	mu  sync.Mutex
	log []string
}

func (l *recordingLimiter) Budget(key string) pacehttp.Budget {
	return &recordingBudget{Budget: l.Limiter.Budget(key), partition: key, l: l}
}

func (l *recordingLimiter) record(s string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.log = append(l.log, s)
}

func (l *recordingLimiter) calls() []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return slices.Clone(l.log)
}

type recordingBudget struct {
	pacehttp.Budget
	partition string
	l         *recordingLimiter
}

func (b *recordingBudget) SetLimits(ctx context.Context, now time.Time, lim pacehttp.Limits) error {
	if lim.Source == pacehttp.LimitsFromHeaders {
		for _, x := range []struct {
			name string
			b    pacehttp.BucketLimits
		}{{"requests", lim.Requests}, {"tokens", lim.Tokens}} {
			if s := describeBucket(x.b); s != "" {
				b.l.record(fmt.Sprintf("%-9s %s (partition %s)", x.name+":", s, b.partition))
			}
		}
	}
	return b.Budget.SetLimits(ctx, now, lim)
}

func (b *recordingBudget) CoolDown(ctx context.Context, now, until time.Time) error {
	b.l.record(fmt.Sprintf("pause:    no request before %v from now, as the server asked (partition %s)",
		until.Sub(now).Round(time.Millisecond), b.partition))
	return b.Budget.CoolDown(ctx, now, until)
}

// describeBucket says what a bucket's limits are, "" when they set nothing.
func describeBucket(b pacehttp.BucketLimits) string {
	var parts []string
	switch {
	case math.IsInf(b.Rate, 1):
		parts = append(parts, "no limit")
	case b.Rate > 0:
		parts = append(parts, fmt.Sprintf("%.4g/s (%.4g/min)", b.Rate, b.Rate*60))
	}
	if b.Burst > 0 {
		parts = append(parts, fmt.Sprintf("burst %d", b.Burst))
	}
	if b.Remaining >= 0 && (b.Rate != 0 || b.Burst != 0) {
		parts = append(parts, fmt.Sprintf("%d left now", b.Remaining))
	}
	return strings.Join(parts, ", ")
}

// redactURL returns u without its user info and query, which may hold a
// key (Google's ?key=).
func redactURL(u *url.URL) string {
	c := *u
	c.User = nil
	if c.RawQuery != "" {
		c.RawQuery = "…"
	}
	return c.String()
}

func redact(s, key string) string {
	if key == "" {
		return s
	}
	return strings.ReplaceAll(s, key, "[key]")
}

// redactingWriter writes through to w with every occurrence of key
// replaced, whatever the server echoed back. Each Write must hold whole
// lines, as fmt.Fprintf's here do.
type redactingWriter struct {
	w   io.Writer
	key string
}

func (r *redactingWriter) Write(p []byte) (int, error) {
	if _, err := io.WriteString(r.w, redact(string(p), r.key)); err != nil {
		return 0, err
	}
	return len(p), nil
}
