package pacehttp

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"net/http"
	"strings"
	"testing"
	"testing/synctest"
	"time"

	"github.com/google/go-cmp/cmp"
	pacetest "github.com/pacehttp/pacehttp/httptest_helpers"
)

// now is the fixed clock of every hint test: a Sunday.
var now = time.Date(2025, time.June, 1, 12, 0, 0, 0, time.UTC)

// hdr builds a header from name, value pairs; a repeated name adds a line.
func hdr(kv ...string) http.Header {
	h := http.Header{}
	for i := 0; i+1 < len(kv); i += 2 {
		h.Add(kv[i], kv[i+1])
	}
	return h
}

// errHeaders returns the Header of every *HeaderError in err, in order, and
// fails t if err holds anything else.
func errHeaders(t testing.TB, err error) []string {
	t.Helper()
	var names []string
	var walk func(error)
	walk = func(err error) {
		switch e := err.(type) {
		case nil:
		case interface{ Unwrap() []error }:
			for _, e := range e.Unwrap() {
				walk(e)
			}
		case *HeaderError:
			if e.Err == nil {
				t.Errorf("HeaderError %q has nil Err", e.Header)
			}
			// 64 bytes of value, each at worst 4 once quoted, and the rest.
			if n := len(e.Error()); n > 512 {
				t.Errorf("HeaderError.Error() is %d bytes long: %.100q...", n, e.Error())
			}
			names = append(names, e.Header)
		default:
			t.Errorf("error %T is not a *HeaderError: %v", err, err)
		}
	}
	walk(err)
	return names
}

var (
	digits500 = strings.Repeat("9", 500)
	zeros500  = strings.Repeat("0", 500)
)

type hintResult struct {
	Hint Hint
	OK   bool
	Errs []string // Header of each *HeaderError
}

func TestRetryHint(t *testing.T) {
	none := hintResult{}
	hint := func(d time.Duration, src string, errs ...string) hintResult {
		return hintResult{Hint: Hint{Wait: d, Source: src}, OK: true, Errs: errs}
	}
	bad := func(errs ...string) hintResult { return hintResult{Errs: errs} }
	tests := []struct {
		name string
		h    http.Header
		want hintResult
	}{
		{"no headers", hdr(), none},

		// retry-after-ms
		{"ms integer", hdr("Retry-After-Ms", "1500"), hint(1500*time.Millisecond, "retry-after-ms")},
		{"ms fraction", hdr("retry-after-ms", "12.5"), hint(12500*time.Microsecond, "retry-after-ms")},
		{"ms zero", hdr("retry-after-ms", "0"), hint(0, "retry-after-ms")},
		{"ms 500 digits", hdr("retry-after-ms", digits500), hint(maxHintWait, "retry-after-ms")},
		{"ms negative", hdr("retry-after-ms", "-1"), bad("retry-after-ms")},
		{"ms exponent", hdr("retry-after-ms", "1e3"), bad("retry-after-ms")},
		{"ms NaN", hdr("retry-after-ms", "NaN"), bad("retry-after-ms")},
		{"ms empty", hdr("retry-after-ms", ""), bad("retry-after-ms")},
		{"ms trailing dot", hdr("retry-after-ms", "5."), bad("retry-after-ms")},

		// Retry-After, delta-seconds
		{"seconds", hdr("Retry-After", "120"), hint(2*time.Minute, "retry-after")},
		{"seconds fraction", hdr("Retry-After", "1.5"), hint(1500*time.Millisecond, "retry-after")},
		{"seconds nanosecond", hdr("Retry-After", "0.0000000019"), hint(1, "retry-after")},
		{"seconds zero", hdr("Retry-After", "0"), hint(0, "retry-after")},
		{"seconds padded", hdr("Retry-After", " 7\t"), hint(7*time.Second, "retry-after")},
		{"seconds leading zeros", hdr("Retry-After", zeros500+"7"), hint(7*time.Second, "retry-after")},
		{"seconds just fits", hdr("Retry-After", "9223372036.854775807"), hint(maxHintWait, "retry-after")},
		{"seconds 1e18 in digits", hdr("Retry-After", "1000000000000000000"), hint(maxHintWait, "retry-after")},
		{"seconds 500 digits", hdr("Retry-After", digits500), hint(maxHintWait, "retry-after")},
		{"seconds 500 digit fraction", hdr("Retry-After", "1."+digits500), hint(1999999999, "retry-after")},
		{"seconds exponent 1e18", hdr("Retry-After", "1e18"), bad("retry-after")},
		{"seconds negative", hdr("Retry-After", "-5"), bad("retry-after")},
		{"seconds plus sign", hdr("Retry-After", "+5"), bad("retry-after")},
		{"seconds NaN", hdr("Retry-After", "NaN"), bad("retry-after")},
		{"seconds Infinity", hdr("Retry-After", "Infinity"), bad("retry-after")},
		{"seconds +Inf", hdr("Retry-After", "+Inf"), bad("retry-after")},
		{"seconds hex", hdr("Retry-After", "0x10"), bad("retry-after")},
		{"seconds underscore", hdr("Retry-After", "1_000"), bad("retry-after")},
		{"seconds garbage", hdr("Retry-After", "soon"), bad("retry-after")},
		{"seconds empty", hdr("Retry-After", ""), bad("retry-after")},
		{"seconds blank", hdr("Retry-After", "  "), bad("retry-after")},
		{"seconds list", hdr("Retry-After", "5, 10"), bad("retry-after")},

		// Retry-After, HTTP-date
		{"date RFC 1123", hdr("Retry-After", "Sun, 01 Jun 2025 12:00:30 GMT"), hint(30*time.Second, "retry-after")},
		{"date RFC 850", hdr("Retry-After", "Sunday, 01-Jun-25 12:01:00 GMT"), hint(time.Minute, "retry-after")},
		{"date asctime", hdr("Retry-After", "Sun Jun  1 12:02:00 2025"), hint(2*time.Minute, "retry-after")},
		{"date now", hdr("Retry-After", "Sun, 01 Jun 2025 12:00:00 GMT"), hint(0, "retry-after")},
		{"date past", hdr("Retry-After", "Sun, 06 Nov 1994 08:49:37 GMT"), hint(0, "retry-after")},
		{"date 1900", hdr("Retry-After", "Mon, 01 Jan 1900 00:00:00 GMT"), hint(0, "retry-after")},
		{"date 9999", hdr("Retry-After", "Fri, 31 Dec 9999 23:59:59 GMT"), hint(maxHintWait, "retry-after")},
		{"date ISO", hdr("Retry-After", "2025-06-01T12:00:30Z"), bad("retry-after")},
		{"date bad day", hdr("Retry-After", "Sun, 32 Jun 2025 12:00:30 GMT"), bad("retry-after")},

		// Repeated lines: the largest valid value, never the sum.
		{"repeated ascending", hdr("Retry-After", "5", "Retry-After", "30"), hint(30*time.Second, "retry-after")},
		{"repeated descending", hdr("Retry-After", "30", "Retry-After", "5"), hint(30*time.Second, "retry-after")},
		{"repeated date and seconds", hdr("Retry-After", "Sun, 01 Jun 2025 12:01:00 GMT", "Retry-After", "5"), hint(time.Minute, "retry-after")},
		{"repeated one bad", hdr("Retry-After", "garbage", "Retry-After", "5"), hint(5*time.Second, "retry-after", "retry-after")},
		{"repeated ms", hdr("retry-after-ms", "10", "retry-after-ms", "20"), hint(20*time.Millisecond, "retry-after-ms")},

		// Priority between sources.
		{"ms beats seconds", hdr("retry-after-ms", "250", "Retry-After", "1"), hint(250*time.Millisecond, "retry-after-ms")},
		{"bad ms falls to seconds", hdr("retry-after-ms", "-1", "Retry-After", "1"), hint(time.Second, "retry-after", "retry-after-ms")},
		{"seconds beat exhausted quota", hdr("Retry-After", "1", "x-ratelimit-remaining", "0", "x-ratelimit-reset", "1748779290"), hint(time.Second, "retry-after")},
		{"bad seconds fall to quota", hdr("Retry-After", "NaN", "x-ratelimit-remaining", "0", "x-ratelimit-reset", "1748779290"),
			hint(90*time.Second, "x-ratelimit-reset", "retry-after")},

		// Reset headers apply only when the quota is exhausted.
		{"openai requests", hdr("x-ratelimit-limit-requests", "60", "x-ratelimit-remaining-requests", "0", "x-ratelimit-reset-requests", "1s"),
			hint(16666667, "x-ratelimit-reset-requests")},
		{"openai remaining", hdr("x-ratelimit-limit-requests", "60", "x-ratelimit-remaining-requests", "5", "x-ratelimit-reset-requests", "1s"), none},
		{"openai longest of two", hdr(
			"x-ratelimit-limit-requests", "60", "x-ratelimit-remaining-requests", "0", "x-ratelimit-reset-requests", "1s",
			"x-ratelimit-limit-tokens", "1000", "x-ratelimit-remaining-tokens", "0", "x-ratelimit-reset-tokens", "6m0s"),
			hint(360*time.Millisecond, "x-ratelimit-reset-tokens")},
		{"anthropic tokens", hdr("anthropic-ratelimit-tokens-limit", "100", "anthropic-ratelimit-tokens-remaining", "0",
			"anthropic-ratelimit-tokens-reset", "2025-06-01T12:00:10Z"), hint(100*time.Millisecond, "anthropic-ratelimit-tokens-reset")},
		{"anthropic unknown limit", hdr("anthropic-ratelimit-output-tokens-remaining", "0",
			"anthropic-ratelimit-output-tokens-reset", "2025-06-01T12:00:10Z"), hint(10*time.Second, "anthropic-ratelimit-output-tokens-reset")},
		{"ietf", hdr("RateLimit-Policy", `"default";q=100;w=60`, "RateLimit", `"default";r=0;t=30`), hint(30*time.Second, "ratelimit")},
		{"ietf remaining", hdr("RateLimit-Policy", `"default";q=100;w=60`, "RateLimit", `"default";r=1;t=30`), none},
		{"ietf dictionary", hdr("RateLimit", "limit=100, remaining=0, reset=5"), hint(5*time.Second, "ratelimit")},
		{"ratelimit-reset", hdr("RateLimit-Limit", "100", "RateLimit-Remaining", "0", "RateLimit-Reset", "7"), hint(7*time.Second, "ratelimit-reset")},
		{"github", hdr("x-ratelimit-limit", "60", "x-ratelimit-remaining", "0", "x-ratelimit-reset", "1748779290"), hint(90*time.Second, "x-ratelimit-reset")},
		{"github past", hdr("x-ratelimit-remaining", "0", "x-ratelimit-reset", "1600000000"), hint(0, "x-ratelimit-reset")},
		{"github used", hdr("x-ratelimit-limit", "60", "x-ratelimit-used", "60", "x-ratelimit-reset", "1748779290"), hint(90*time.Second, "x-ratelimit-reset")},
		{"longest across dialects", hdr("x-ratelimit-remaining", "0", "x-ratelimit-reset", "1748779290", "RateLimit", `"default";r=0;t=30`),
			hint(90*time.Second, "x-ratelimit-reset")},
		{"reset without remaining", hdr("x-ratelimit-reset", "1748779290", "RateLimit-Reset", "5"), none},
		{"remaining without reset", hdr("x-ratelimit-remaining", "0", "RateLimit-Remaining", "0"), none},
		{"malformed reset", hdr("x-ratelimit-remaining", "0", "x-ratelimit-reset", "-5"), bad("x-ratelimit-reset")},
		{"malformed remaining", hdr("x-ratelimit-remaining", "zero", "x-ratelimit-reset", "1748779290"), bad("x-ratelimit-remaining")},
		{"repeated remaining", hdr("x-ratelimit-remaining", "3", "x-ratelimit-remaining", "0", "x-ratelimit-reset", "1748779290"),
			hint(90*time.Second, "x-ratelimit-reset")},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			hint, ok, err := retryHint(tt.h, now)
			got := hintResult{Hint: hint, OK: ok, Errs: errHeaders(t, err)}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("retryHint(%v) mismatch (-want +got):\n%s", tt.h, diff)
			}
		})
	}
}

func TestParseQuotas(t *testing.T) {
	// q fills in the unknowns so that each case states only what it tests.
	q := func(src, name string, limit, remaining int64, reset time.Duration) quota {
		return quota{Name: name, Limit: limit, Remaining: remaining, Reset: reset, Refill: src == "openai" || src == "anthropic", Source: src}
	}
	withWindow := func(q quota, w time.Duration) quota { q.Window = w; return q }
	tests := []struct {
		name string
		h    http.Header
		want []quota
		errs []string
	}{
		{"none", hdr("Content-Type", "text/plain"), nil, nil},
		{"anthropic", hdr(
			"anthropic-ratelimit-requests-limit", "50", "anthropic-ratelimit-requests-remaining", "49",
			"anthropic-ratelimit-requests-reset", "2025-06-01T12:00:01Z",
			"anthropic-ratelimit-input-tokens-limit", "40000", "anthropic-ratelimit-input-tokens-remaining", "0",
			"anthropic-ratelimit-input-tokens-reset", "2025-06-01T12:00:30.5+00:00",
			"anthropic-ratelimit-output-tokens-reset", "2025-06-01T11:00:00Z"),
			[]quota{
				q("anthropic", "requests", 50, 49, time.Second),
				q("anthropic", "input-tokens", 40000, 0, 30500*time.Millisecond),
				q("anthropic", "output-tokens", -1, -1, 0),
			}, nil},
		{"anthropic bad reset", hdr("anthropic-ratelimit-tokens-remaining", "0", "anthropic-ratelimit-tokens-reset", "30"),
			[]quota{q("anthropic", "tokens", -1, 0, -1)}, []string{"anthropic-ratelimit-tokens-reset"}},
		{"anthropic year 9999", hdr("anthropic-ratelimit-tokens-reset", "9999-12-31T23:59:59Z"),
			[]quota{q("anthropic", "tokens", -1, -1, maxHintWait)}, nil},
		{"openai", hdr(
			"x-ratelimit-limit-requests", "500", "x-ratelimit-remaining-requests", "499", "x-ratelimit-reset-requests", "120ms",
			"x-ratelimit-limit-tokens", "30000", "x-ratelimit-remaining-tokens", "0", "x-ratelimit-reset-tokens", "1m2.5s"),
			[]quota{q("openai", "requests", 500, 499, 120*time.Millisecond), q("openai", "tokens", 30000, 0, 62500*time.Millisecond)}, nil},
		{"ietf joined by name", hdr(
			"RateLimit-Policy", `"default";q=100;w=60, "daily";q=1000;w=86400;qu="requests"`,
			"RateLimit", `"default";r=50;t=30;pk=:cHJvamVjdA==:`),
			[]quota{
				withWindow(q("ietf", "default", 100, 50, 30*time.Second), time.Minute),
				withWindow(q("ietf", "daily", 1000, -1, -1), 24*time.Hour),
			}, nil},
		{"ietf lines joined", hdr("RateLimit", `"a";r=1`, "RateLimit", `b;r=2;t=3`),
			[]quota{q("ietf", "a", -1, 1, -1), q("ietf", "b", -1, 2, 3*time.Second)}, nil},
		{"ietf escaped name", hdr("RateLimit", `"we say \"hi\"";r=0;t=1`), []quota{q("ietf", `we say "hi"`, -1, 0, time.Second)}, nil},
		{"ietf without policy", hdr("RateLimit", `"default";r=0;t=30`), []quota{q("ietf", "default", -1, 0, 30*time.Second)}, nil},
		{"ietf numeric policy", hdr("RateLimit-Policy", "100;w=60", "RateLimit", "limit=100, remaining=7, reset=5"),
			[]quota{withWindow(q("ietf", "requests", 100, 7, 5*time.Second), time.Minute)}, nil},
		{"ietf huge numbers", hdr("RateLimit", `"x";r=`+digits500+`;t=`+digits500),
			[]quota{q("ietf", "x", -1, math.MaxInt64, maxHintWait)}, nil},
		{"ietf broken RateLimit keeps the rest", hdr(
			"RateLimit-Policy", `"default";q=100;w=60`, "RateLimit", `"default;r=5`,
			"x-ratelimit-limit", "60", "x-ratelimit-remaining", "1"),
			[]quota{withWindow(q("ietf", "default", 100, -1, -1), time.Minute), q("github", "requests", 60, 1, -1)}, []string{"ratelimit"}},
		{"ietf negative", hdr("RateLimit", `"default";r=-1;t=30`), nil, []string{"ratelimit"}},
		{"ietf NaN", hdr("RateLimit", `"default";r=5;t=NaN`), nil, []string{"ratelimit"}},
		{"ietf upper-case key", hdr("RateLimit", `"default";R=5`), nil, []string{"ratelimit"}},
		{"ietf trailing comma", hdr("RateLimit", `"default";r=5,`), nil, []string{"ratelimit"}},
		{"ietf bad token", hdr("RateLimit", `1x;r=5`), nil, []string{"ratelimit"}},
		{"ietf quote inside", hdr("RateLimit", `"de"fault";r=5`), nil, []string{"ratelimit"}},
		{"ietf bad escape", hdr("RateLimit", `"a\x";r=5`), nil, []string{"ratelimit"}},
		{"ietf empty", hdr("RateLimit", ""), nil, []string{"ratelimit"}},
		{"ietf bad dictionary", hdr("RateLimit", "limit=100, remaining=-1"), nil, []string{"ratelimit"}},
		{"ietf bad policy", hdr("RateLimit-Policy", `"default";q=1.5`, "RateLimit", `"default";r=0;t=1`),
			[]quota{q("ietf", "default", -1, 0, time.Second)}, []string{"ratelimit-policy"}},
		{"ratelimit older draft", hdr("RateLimit-Limit", "100, 100;w=60", "RateLimit-Remaining", "3", "RateLimit-Reset", "2.5"),
			[]quota{q("ratelimit", "requests", 100, 3, 2500*time.Millisecond)}, nil},
		{"github", hdr("x-ratelimit-limit", "5000", "x-ratelimit-remaining", "4999", "x-ratelimit-used", "1",
			"x-ratelimit-reset", "1748780100", "x-ratelimit-resource", "core"),
			[]quota{q("github", "core", 5000, 4999, 15*time.Minute)}, nil},
		{"github used fills remaining", hdr("x-ratelimit-limit", "30", "x-ratelimit-used", "31"), []quota{q("github", "requests", 30, 0, -1)}, nil},
		{"github epoch past", hdr("x-ratelimit-reset", "500000000"), []quota{q("github", "requests", -1, -1, 0)}, nil},
		{"reset as seconds from now", hdr("x-ratelimit-reset", "30"), []quota{q("github", "requests", -1, -1, 30*time.Second)}, nil},
		{"reset zero seconds", hdr("x-ratelimit-reset", "0"), []quota{q("github", "requests", -1, -1, 0)}, nil},
		{"github epoch fraction", hdr("x-ratelimit-reset", "1748779200.25"), []quota{q("github", "requests", -1, -1, 250*time.Millisecond)}, nil},
		{"github epoch far future", hdr("x-ratelimit-reset", "99999999999999999999"), []quota{q("github", "requests", -1, -1, maxHintWait)}, nil},
		{"github epoch 500 digits", hdr("x-ratelimit-reset", digits500), []quota{q("github", "requests", -1, -1, maxHintWait)}, nil},
		{"github epoch year 2262", hdr("x-ratelimit-reset", "9223372036"), []quota{q("github", "requests", -1, -1, 9223372036*time.Second-1748779200*time.Second)}, nil},
		{"hostile counts", hdr("x-ratelimit-limit", "-1", "x-ratelimit-remaining", "NaN", "x-ratelimit-used", "1e3"),
			nil, []string{"x-ratelimit-limit", "x-ratelimit-remaining", "x-ratelimit-used"}},
		{"huge count saturates", hdr("x-ratelimit-limit-requests", digits500), []quota{q("openai", "requests", math.MaxInt64, -1, -1)}, nil},
		{"repeated lines are conservative", hdr(
			"x-ratelimit-limit-requests", "100", "x-ratelimit-limit-requests", "60",
			"x-ratelimit-remaining-requests", "5", "x-ratelimit-remaining-requests", "0", "x-ratelimit-remaining-requests", "9",
			"x-ratelimit-reset-requests", "5s", "x-ratelimit-reset-requests", "1s"),
			[]quota{q("openai", "requests", 60, 0, 5*time.Second)}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := parseQuotas(tt.h, now)
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("parseQuotas(%v) mismatch (-want +got):\n%s", tt.h, diff)
			}
			if diff := cmp.Diff(tt.errs, errHeaders(t, err)); diff != "" {
				t.Errorf("parseQuotas(%v) errors mismatch (-want +got):\n%s", tt.h, diff)
			}
		})
	}
}

func TestParseGoDuration(t *testing.T) {
	tests := []struct {
		in      string
		want    time.Duration
		wantErr bool
	}{
		{in: "6m0s", want: 6 * time.Minute},
		{in: "1s", want: time.Second},
		{in: "20ms", want: 20 * time.Millisecond},
		{in: "1.5s", want: 1500 * time.Millisecond},
		{in: "1h2m3.5s", want: time.Hour + 2*time.Minute + 3500*time.Millisecond},
		{in: "3us", want: 3 * time.Microsecond},
		{in: "3µs", want: 3 * time.Microsecond},
		{in: "7ns", want: 7},
		{in: "0.5h", want: 30 * time.Minute},
		{in: "30", want: 30 * time.Second},
		{in: "0", want: 0},
		{in: "2562047h47m16.854775807s", want: maxHintWait},
		{in: "2562048h", want: maxHintWait},
		{in: "99999999999999999999h", want: maxHintWait},
		{in: digits500 + "h" + digits500 + "s", want: maxHintWait},
		{in: "", wantErr: true},
		{in: "-1s", wantErr: true},
		{in: "+1s", wantErr: true},
		{in: "1e3s", wantErr: true},
		{in: "5x", wantErr: true},
		{in: "s", wantErr: true},
		{in: ".5s", wantErr: true},
		{in: "1s2", wantErr: true},
		{in: "1 s", wantErr: true},
		{in: "NaN", wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			got, err := parseGoDuration(tt.in)
			if (err != nil) != tt.wantErr || got != tt.want && !tt.wantErr {
				t.Errorf("parseGoDuration(%q) = %v, %v; want %v, error %t", tt.in, got, err, tt.want, tt.wantErr)
			}
		})
	}
}

func TestQuotaNextUnitAndRefillRate(t *testing.T) {
	tests := []struct {
		name     string
		q        quota
		wantNext time.Duration
		wantRate float64
	}{
		{"openai exhausted", quota{Limit: 60, Remaining: 0, Reset: time.Second, Refill: true, Source: "openai"}, 16666667, 60},
		{"openai half full", quota{Limit: 60, Remaining: 30, Reset: 500 * time.Millisecond, Refill: true, Source: "openai"}, 0, 60},
		{"openai full", quota{Limit: 60, Remaining: 60, Reset: 0, Refill: true, Source: "openai"}, 0, 0},
		{"anthropic exhausted", quota{Limit: 100, Remaining: 0, Reset: 10 * time.Second, Refill: true, Source: "anthropic"}, 100 * time.Millisecond, 10},
		{"anthropic unknown limit", quota{Limit: -1, Remaining: 0, Reset: 2 * time.Second, Refill: true, Source: "anthropic"}, 2 * time.Second, 0},
		{"refill zero limit", quota{Limit: 0, Remaining: 0, Reset: time.Second, Refill: true}, time.Second, 0},
		{"github exhausted", quota{Limit: 5000, Remaining: 0, Reset: 30 * time.Minute, Source: "github"}, 30 * time.Minute, 5000.0 / 1800},
		{"github left", quota{Limit: 5000, Remaining: 1, Reset: 30 * time.Minute, Source: "github"}, 0, 5000.0 / 1800},
		{"ietf window", quota{Limit: 100, Remaining: 0, Reset: 30 * time.Second, Window: time.Minute, Source: "ietf"}, 30 * time.Second, 100.0 / 60},
		{"ietf policy only", quota{Limit: 1000, Remaining: -1, Reset: -1, Window: 24 * time.Hour, Source: "ietf"}, 0, 1000.0 / 86400},
		{"ratelimit exhausted", quota{Limit: -1, Remaining: 0, Reset: 7 * time.Second, Source: "ratelimit"}, 7 * time.Second, 0},
		{"unknown remaining", quota{Limit: 10, Remaining: -1, Reset: time.Second}, 0, 10},
		{"unknown reset", quota{Limit: 10, Remaining: 0, Reset: -1}, 0, 0},
		{"saturated reset", quota{Limit: 1, Remaining: 0, Reset: maxHintWait, Refill: true}, maxHintWait, 1 / maxHintWait.Seconds()},
		{"huge limit", quota{Limit: math.MaxInt64, Remaining: 0, Reset: time.Nanosecond, Refill: true}, 1, 9.223372036854775e+27},
		{"unknown", quota{Limit: -1, Remaining: -1, Reset: -1}, 0, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := tt.q.nextUnit(); got != tt.wantNext {
				t.Errorf("%+v.nextUnit() = %v, want %v", tt.q, got, tt.wantNext)
			}
			if got := tt.q.refillRate(); got != tt.wantRate {
				t.Errorf("%+v.refillRate() = %v, want %v", tt.q, got, tt.wantRate)
			}
		})
	}
}

func TestRetryHintFromBody(t *testing.T) {
	type result struct {
		Hint  Hint
		OK    bool
		Daily bool
		Errs  []string
	}
	hint := func(d time.Duration) Hint { return Hint{Wait: d, Source: "google.rpc.RetryInfo"} }
	tests := []struct {
		name string
		body string
		want result
	}{
		{"retry and daily", `{"error":{"code":429,"status":"RESOURCE_EXHAUSTED","details":[
			{"@type":"type.googleapis.com/google.rpc.RetryInfo","retryDelay":"22s"},
			{"@type":"type.googleapis.com/google.rpc.QuotaFailure","violations":[
				{"quotaMetric":"generativelanguage.googleapis.com/generate_content_free_tier_requests",
				 "quotaId":"GenerateRequestsPerDayPerProjectPerModel-FreeTier"}]}]}}`,
			result{Hint: hint(22 * time.Second), OK: true, Daily: true}},
		{"per minute", `{"error":{"details":[
			{"@type":"type.googleapis.com/google.rpc.QuotaFailure","violations":[{"quotaId":"GenerateRequestsPerMinutePerProjectPerModel"}]},
			{"@type":"type.googleapis.com/google.rpc.RetryInfo","retryDelay":"1.5s"}]}}`,
			result{Hint: hint(1500 * time.Millisecond), OK: true}},
		{"daily in lower case", `{"error":{"details":[{"@type":"type.googleapis.com/google.rpc.QuotaFailure","violations":[{"quotaId":"tokens-perday"}]}]}}`,
			result{Daily: true}},
		{"microsecond", `{"error":{"details":[{"@type":"type.googleapis.com/google.rpc.RetryInfo","retryDelay":"0.000001s"}]}}`,
			result{Hint: hint(time.Microsecond), OK: true}},
		{"longest of two", `{"error":{"details":[{"@type":"type.googleapis.com/google.rpc.RetryInfo","retryDelay":"3s"},
			{"@type":"type.googleapis.com/google.rpc.RetryInfo","retryDelay":"9s"}]}}`,
			result{Hint: hint(9 * time.Second), OK: true}},
		{"huge", `{"error":{"details":[{"@type":"type.googleapis.com/google.rpc.RetryInfo","retryDelay":"` + digits500 + `s"}]}}`,
			result{Hint: hint(maxHintWait), OK: true}},
		{"array form", `[{"error":{"details":[{"@type":"type.googleapis.com/google.rpc.RetryInfo","retryDelay":"4s"}]}}]`,
			result{Hint: hint(4 * time.Second), OK: true}},
		{"no details", `{"error":{"code":429,"message":"Resource exhausted"}}`, result{}},
		{"not google", `{"message":"slow down"}`, result{}},
		{"negative", `{"error":{"details":[{"@type":"type.googleapis.com/google.rpc.RetryInfo","retryDelay":"-1s"}]}}`,
			result{Errs: []string{"google.rpc.RetryInfo"}}},
		{"no unit", `{"error":{"details":[{"@type":"type.googleapis.com/google.rpc.RetryInfo","retryDelay":"22"}]}}`,
			result{Errs: []string{"google.rpc.RetryInfo"}}},
		{"number", `{"error":{"details":[{"@type":"type.googleapis.com/google.rpc.RetryInfo","retryDelay":22}]}}`,
			result{Errs: []string{"google.rpc.RetryInfo"}}},
		{"missing delay", `{"error":{"details":[{"@type":"type.googleapis.com/google.rpc.RetryInfo"}]}}`,
			result{Errs: []string{"google.rpc.RetryInfo"}}},
		{"exponent", `{"error":{"details":[{"@type":"type.googleapis.com/google.rpc.RetryInfo","retryDelay":"1e3s"}]}}`,
			result{Errs: []string{"google.rpc.RetryInfo"}}},
		{"one bad one good", `{"error":{"details":[{"@type":"type.googleapis.com/google.rpc.RetryInfo","retryDelay":"NaNs"},
			{"@type":"type.googleapis.com/google.rpc.RetryInfo","retryDelay":"2s"}]}}`,
			result{Hint: hint(2 * time.Second), OK: true, Errs: []string{"google.rpc.RetryInfo"}}},
		{"garbage", `<html>429 Too Many Requests</html>`, result{Errs: []string{"google.rpc.Status"}}},
		{"truncated", `{"error":{"details":[`, result{Errs: []string{"google.rpc.Status"}}},
		{"error is a string", `{"error":"rate_limited"}`, result{Errs: []string{"google.rpc.Status"}}},
		{"empty", ``, result{Errs: []string{"google.rpc.Status"}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			hint, ok, daily, err := retryHintFromBody([]byte(tt.body))
			got := result{Hint: hint, OK: ok, Daily: daily, Errs: errHeaders(t, err)}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("retryHintFromBody mismatch (-want +got):\n%s", diff)
			}
		})
	}
}

func TestHeaderError(t *testing.T) {
	tests := []struct {
		name  string
		value string
		want  string
	}{
		{"short", "soon", `pacehttp: ignored retry-after: "soon": neither delta-seconds nor an HTTP-date`},
		{"long", "-" + digits500[:499], `pacehttp: ignored retry-after: "-` + digits500[:63] + `"... (500 bytes): neither delta-seconds nor an HTTP-date`},
		{"control characters", "1\r\nX-Evil: 1", `pacehttp: ignored retry-after: "1\r\nX-Evil: 1": neither delta-seconds nor an HTTP-date`},
		// The cut falls inside the 2-byte "é" at bytes 63-64 and backs off to its start.
		{"cut at a rune", strings.Repeat("a", 63) + strings.Repeat("é", 10),
			`pacehttp: ignored retry-after: "` + strings.Repeat("a", 63) + `"... (83 bytes): neither delta-seconds nor an HTTP-date`},
		// Invalid UTF-8 has no character start to back off to; the cut stops
		// after one character's worth instead of emptying the value.
		{"invalid UTF-8", strings.Repeat("\xa2", 100),
			`pacehttp: ignored retry-after: "` + strings.Repeat(`\xa2`, 61) + `"... (100 bytes): neither delta-seconds nor an HTTP-date`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, _, err := retryHint(hdr("Retry-After", tt.value), now)
			var he *HeaderError
			if !errors.As(err, &he) {
				t.Fatalf("retryHint error %v is not a *HeaderError", err)
			}
			if diff := cmp.Diff(tt.want, he.Error()); diff != "" {
				t.Errorf("Error() mismatch (-want +got):\n%s", diff)
			}
			if he.Value != tt.value {
				t.Errorf("Value = %q, want the value in full", he.Value)
			}
			if !errors.Is(err, errDelay) {
				t.Errorf("errors.Is(%v, errDelay) = false, want true", err)
			}
		})
	}
}

// Hostile hints run through the whole chain under testing/synctest, over
// the in-memory transport of a Scripted server, so that the fake clock
// measures every wait exactly: an ignored hint shows as the fixed backoff
// (hostileBackoff), an honoured one as its own length plus upward jitter,
// and a give-up as no time at all.
const (
	hostileBackoff = 7 * time.Second  // the wait when a hint is ignored
	hostileMaxWait = 10 * time.Second // WithMaxWait of every case
)

func hostileOpts(extra ...Option) []Option {
	return append([]Option{
		WithMaxAttempts(2),
		WithMaxWait(hostileMaxWait),
		WithBackoffFunc(func(int) time.Duration { return hostileBackoff }),
		WithRetryBudget(-1, 0),
	}, extra...)
}

func TestHostileHints(t *testing.T) {
	const (
		ignored  = iota // malformed: as if absent, so the fixed backoff
		honoured        // a valid wait within the cap: slept, plus jitter
		giveUp          // valid but beyond the cap: the 429 at once
	)
	farFuture := time.Date(9999, 12, 31, 23, 59, 59, 0, time.UTC).Format(http.TimeFormat)
	farPast := time.Date(1900, 1, 1, 0, 0, 0, 0, time.UTC).Format(http.TimeFormat)
	tests := []struct {
		name   string
		header []string
		want   int
		wait   time.Duration // for honoured: the hint
	}{
		{"retry-after 1e18 (exponent form)", []string{"Retry-After", "1e18"}, ignored, 0},
		{"retry-after 10^18 seconds", []string{"Retry-After", "1" + strings.Repeat("0", 18)}, giveUp, 0},
		{"retry-after -5", []string{"Retry-After", "-5"}, ignored, 0},
		{"retry-after NaN", []string{"Retry-After", "NaN"}, ignored, 0},
		{"retry-after Infinity", []string{"Retry-After", "Infinity"}, ignored, 0},
		{"retry-after +Inf", []string{"Retry-After", "+Inf"}, ignored, 0},
		{"retry-after 500 digits", []string{"Retry-After", strings.Repeat("9", 500)}, giveUp, 0},
		{"retry-after 500 digits of fraction", []string{"Retry-After", "1." + strings.Repeat("9", 500)}, honoured, 2 * time.Second},
		{"retry-after year 9999", []string{"Retry-After", farFuture}, giveUp, 0},
		{"retry-after year 1900", []string{"Retry-After", farPast}, honoured, 0},
		{"retry-after empty", []string{"Retry-After", ""}, ignored, 0},
		{"retry-after NUL bytes", []string{"Retry-After", "1\x002"}, ignored, 0},
		{"retry-after folded list", []string{"Retry-After", "2, 7"}, ignored, 0},
		{"retry-after-ms negative", []string{"retry-after-ms", "-1"}, ignored, 0},
		{"retry-after-ms 30 digits", []string{"retry-after-ms", strings.Repeat("9", 30)}, giveUp, 0},
		{"retry-after just under the cap", []string{"Retry-After", "9.99"}, honoured, 9990 * time.Millisecond},
		{"retry-after just over the cap", []string{"Retry-After", "10.001"}, giveUp, 0},
		{"reset epoch far past", []string{"X-Ratelimit-Remaining", "0", "X-Ratelimit-Reset", "500000000"}, honoured, 0},
		{"reset epoch far future", []string{"X-Ratelimit-Remaining", "0", "X-Ratelimit-Reset", "99999999999"}, giveUp, 0},
		{"reset epoch 40 digits", []string{"X-Ratelimit-Remaining", "0", "X-Ratelimit-Reset", strings.Repeat("9", 40)}, giveUp, 0},
		{"reset epoch negative", []string{"X-Ratelimit-Remaining", "0", "X-Ratelimit-Reset", "-1"}, ignored, 0},
		{"anthropic reset year 9999", []string{"anthropic-ratelimit-requests-remaining", "0", "anthropic-ratelimit-requests-reset", "9999-12-31T23:59:59Z"}, giveUp, 0},
		{"openai reset 99999999h", []string{"x-ratelimit-remaining-requests", "0", "x-ratelimit-reset-requests", "99999999h"}, giveUp, 0},
		{"ratelimit empty t", []string{"RateLimit", `"default";r=0;t=`}, ignored, 0},
		{"ratelimit trailing commas", []string{"RateLimit", `"default";r=0;t=5,,`}, ignored, 0},
		{"ratelimit negative t", []string{"RateLimit", `default;r=0;t=-3`}, ignored, 0},
		{"ratelimit exponent t", []string{"RateLimit", `"d";r=0;t=1e9`}, ignored, 0},
		{"ratelimit unterminated string", []string{"RateLimit", `"d;r=0;t=5`}, ignored, 0},
		{"ratelimit valid", []string{"RateLimit", `"d";r=0;t=5`}, honoured, 5 * time.Second},
		{"ratelimit-reset exponent", []string{"RateLimit-Remaining", "0", "RateLimit-Reset", "1e3"}, ignored, 0},
		{"repeated retry-after, largest wins", []string{"Retry-After", "1", "Retry-After", "3"}, honoured, 3 * time.Second},
		{"repeated retry-after, garbage skipped", []string{"Retry-After", "garbage", "Retry-After", "3"}, honoured, 3 * time.Second},
		{"repeated retry-after, one huge", []string{"Retry-After", "1", "Retry-After", strings.Repeat("9", 100)}, giveUp, 0},
		{"bad retry-after-ms falls back to retry-after", []string{"retry-after-ms", "NaN", "Retry-After", "2"}, honoured, 2 * time.Second},
		{"remaining conflicts: the fewer wins", []string{"X-Ratelimit-Remaining", "5", "X-Ratelimit-Remaining", "0", "X-Ratelimit-Reset", "500000000"}, honoured, 0},
	}
	for _, tt := range tests {
		// The retry layer alone, whose waits are the hints'; under New
		// the pacer's gate decides when a throttled retry leaves (see
		// TestHostileHintsPaced).
		t.Run(tt.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				sc := pacetest.NewScripted(pacetest.Status(http.StatusTooManyRequests, tt.header...), pacetest.OK("done"))
				defer sc.Close()
				rt := Chain(sc.Transport(), Retry(WithMaxAttempts(2), WithMaxWait(hostileMaxWait),
					WithBackoffFunc(func(int) time.Duration { return hostileBackoff }), WithRetryBudget(-1, 0)))
				start := time.Now()
				resp, err := rt.RoundTrip(faultRequest(t, context.Background(), http.MethodGet, "http://api.test/", ""))
				if err != nil {
					t.Fatal(err)
				}
				io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				elapsed, hits := time.Since(start), len(sc.Requests())
				if elapsed > hostileMaxWait {
					t.Errorf("waited %v, beyond the max wait %v", elapsed, hostileMaxWait)
				}
				switch tt.want {
				case ignored:
					if resp.StatusCode != 200 || hits != 2 || elapsed != hostileBackoff {
						t.Errorf("got %d after %d hits and %v; want the hint ignored: 200 after 2 hits and the backoff %v", resp.StatusCode, hits, elapsed, hostileBackoff)
					}
				case honoured:
					// Upward jitter only: a tenth of the wait, 50ms to 1s.
					spread := min(max(tt.wait/10, 50*time.Millisecond), time.Second)
					if resp.StatusCode != 200 || hits != 2 || elapsed < tt.wait || elapsed >= min(tt.wait+spread, hostileMaxWait+1) {
						t.Errorf("got %d after %d hits and %v; want 200 after 2 hits and [%v, %v)", resp.StatusCode, hits, elapsed, tt.wait, tt.wait+spread)
					}
				case giveUp:
					if resp.StatusCode != 429 || hits != 1 || elapsed != 0 || resp.Header.Get("X-Should-Retry") != "false" {
						t.Errorf("got %d (X-Should-Retry %q) after %d hits and %v; want the 429 at once, after 1 hit", resp.StatusCode, resp.Header.Get("X-Should-Retry"), hits, elapsed)
					}
				}
			})
		})
	}
}

// TestHostileHintsPaced sends the hostile hints of TestHostileHints through
// the whole chain: the pacer reads them too, and whatever they say, a
// request ends as the retry layer decides, within the maximum wait.
func TestHostileHintsPaced(t *testing.T) {
	headers := [][]string{
		{"Retry-After", "1e18"}, {"Retry-After", "-5"}, {"Retry-After", "NaN"}, {"Retry-After", strings.Repeat("9", 500)},
		{"Retry-After", "1." + strings.Repeat("9", 500)}, {"Retry-After", ""}, {"retry-after-ms", strings.Repeat("9", 30)},
		{"X-Ratelimit-Remaining", "0", "X-Ratelimit-Reset", strings.Repeat("9", 40)},
		{"anthropic-ratelimit-requests-remaining", "0", "anthropic-ratelimit-requests-reset", "9999-12-31T23:59:59Z"},
		{"RateLimit", `"d;r=0;t=5`}, {"RateLimit-Remaining", "0", "RateLimit-Reset", "1e3"},
	}
	for _, h := range headers {
		t.Run(strings.Join(h, " "), func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				sc := pacetest.NewScripted(pacetest.Status(http.StatusTooManyRequests, h...), pacetest.OK("done"))
				defer sc.Close()
				rt := New(sc.Transport(), hostileOpts()...)
				start := time.Now()
				resp, err := rt.RoundTrip(faultRequest(t, context.Background(), http.MethodGet, "http://api.test/", ""))
				if err != nil {
					t.Fatal(err)
				}
				io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				if elapsed := time.Since(start); elapsed > hostileMaxWait {
					t.Errorf("waited %v, beyond the max wait %v", elapsed, hostileMaxWait)
				}
				if resp.StatusCode != 200 && resp.StatusCode != 429 {
					t.Errorf("status %d, want 200, or the 429 when the hint is past the cap", resp.StatusCode)
				}
			})
		})
	}
}

// TestServerNow: the rule for a server whose clock is not ours. The Date
// of a response is cut to the second and stamped before the answer
// travelled, so with agreeing clocks it is up to a second and the latency
// behind the local clock; within clockTolerance the local clock is kept,
// being finer. Beyond it the server's clock is not ours, and its absolute
// times mean its clock: they are measured from its Date.
func TestServerNow(t *testing.T) {
	local := now.Add(700 * time.Millisecond) // 12:00:00.7
	at := func(hms string) time.Time {
		v, err := time.Parse(time.DateTime, "2025-06-01 "+hms)
		if err != nil {
			t.Fatal(err)
		}
		return v
	}
	date := func(hms string) http.Header { return hdr("Date", at(hms).Format(http.TimeFormat)) }
	tests := []struct {
		name string
		h    http.Header
		want time.Time
	}{
		{"no Date", hdr(), local},
		{"malformed Date", hdr("Date", "yesterday"), local},
		{"empty Date", hdr("Date", ""), local},
		{"agreeing, cut to the second", date("12:00:00"), local},
		{"1.7s behind: rounding and latency", date("11:59:59"), local},
		{"1.3s ahead", date("12:00:02"), local},
		{"2.7s behind", date("11:59:58"), at("11:59:58")},
		{"2.3s ahead", date("12:00:03"), at("12:00:03")},
		{"an hour behind", date("11:00:00"), at("11:00:00")},
		{"an hour ahead", date("13:00:00"), at("13:00:00")},
		{"ANSI C format", hdr("Date", "Sun Jun  1 11:00:00 2025"), at("11:00:00")},
		{"repeated: the first counts", hdr("Date", at("11:00:00").Format(http.TimeFormat), "Date", at("12:00:00").Format(http.TimeFormat)), at("11:00:00")},
	}
	for _, tt := range tests {
		if got := serverNow(tt.h, local); !got.Equal(tt.want) {
			t.Errorf("%s: serverNow = %v, want %v", tt.name, got, tt.want)
		}
	}
}

// TestClockSkew: absolute times in hints are measured from the response's
// Date when the server's clock is off, in the retry layer (retryHint) and
// in the pacer (parseQuotas) alike; with agreeing clocks the local clock
// keeps its precision.
func TestClockSkew(t *testing.T) {
	hourBehind := now.Add(-time.Hour)
	date := hourBehind.Format(http.TimeFormat)
	tests := []struct {
		name string
		h    http.Header
		now  time.Time
		want Hint
	}{
		{"Retry-After HTTP-date, server an hour behind",
			hdr("Date", date, "Retry-After", hourBehind.Add(30*time.Second).Format(http.TimeFormat)), now,
			Hint{Wait: 30 * time.Second, Source: "retry-after"}},
		{"Retry-After HTTP-date, server an hour ahead",
			hdr("Date", now.Add(time.Hour).Format(http.TimeFormat), "Retry-After", now.Add(time.Hour+30*time.Second).Format(http.TimeFormat)), now,
			Hint{Wait: 30 * time.Second, Source: "retry-after"}},
		{"Anthropic RFC 3339 reset, server an hour behind",
			hdr("Date", date, "anthropic-ratelimit-requests-limit", "1", "anthropic-ratelimit-requests-remaining", "0",
				"anthropic-ratelimit-requests-reset", hourBehind.Add(5*time.Second).Format(time.RFC3339)), now,
			Hint{Wait: 5 * time.Second, Source: "anthropic-ratelimit-requests-reset"}},
		{"GitHub epoch reset, server an hour behind",
			hdr("Date", date, "x-ratelimit-remaining", "0", "x-ratelimit-reset", fmt.Sprint(hourBehind.Add(20*time.Second).Unix())), now,
			Hint{Wait: 20 * time.Second, Source: "x-ratelimit-reset"}},
		{"delta-seconds are not moved by the Date",
			hdr("Date", date, "Retry-After", "7"), now,
			Hint{Wait: 7 * time.Second, Source: "retry-after"}},
		{"agreeing clocks keep the local precision",
			hdr("Date", now.Format(http.TimeFormat), "Retry-After", now.Add(3*time.Second).Format(http.TimeFormat)), now.Add(700 * time.Millisecond),
			Hint{Wait: 2300 * time.Millisecond, Source: "retry-after"}},
	}
	for _, tt := range tests {
		hint, ok, err := retryHint(tt.h, tt.now)
		if err != nil || !ok || hint != tt.want {
			t.Errorf("%s: retryHint = %+v, %v, %v; want %+v", tt.name, hint, ok, err, tt.want)
		}
	}

	// The pacer reads resets through parseQuotas, by the same rule.
	h := hdr("Date", date, "anthropic-ratelimit-tokens-limit", "1000", "anthropic-ratelimit-tokens-remaining", "0",
		"anthropic-ratelimit-tokens-reset", hourBehind.Add(10*time.Second).Format(time.RFC3339))
	qs, err := parseQuotas(h, now)
	if err != nil || len(qs) != 1 || qs[0].Reset != 10*time.Second {
		t.Errorf("parseQuotas = %+v, %v; want one quota resetting in 10s", qs, err)
	}
}

// FuzzServerNow checks the clock rule on any Date value and local time:
// the result is the local clock, or the Date when it parses and lies
// clockTolerance or more away; never anything else.
func FuzzServerNow(f *testing.F) {
	f.Add("Sun, 01 Jun 2025 11:00:00 GMT", int64(0))
	f.Add("Sun, 01 Jun 2025 12:00:01 GMT", int64(700e6))
	f.Add("Fri, 31 Dec 9999 23:59:59 GMT", int64(-1))
	f.Add("Mon, 01 Jan 0001 00:00:00 GMT", int64(math.MaxInt64))
	f.Add("Sunday, 01-Jun-25 11:59:58 GMT", int64(math.MinInt64))
	f.Add("garbage", int64(5))
	f.Fuzz(func(t *testing.T, date string, offset int64) {
		local := now.Add(time.Duration(offset))
		got := serverNow(hdr("Date", date), local)
		parsed, err := http.ParseTime(strings.Trim(date, " \t"))
		switch {
		case got.Equal(local):
			if err == nil && (local.Sub(parsed) >= clockTolerance || parsed.Sub(local) >= clockTolerance) {
				t.Errorf("Date %q is %v from %v, yet the local clock was kept", date, local.Sub(parsed), local)
			}
		case err != nil || !got.Equal(parsed):
			t.Errorf("serverNow(%q, %v) = %v: neither the local clock nor the Date", date, local, got)
		case local.Sub(parsed) < clockTolerance && parsed.Sub(local) < clockTolerance:
			t.Errorf("Date %q is within %v of %v, yet replaced the local clock", date, clockTolerance, local)
		}
	})
}

// TestHeaderErrorsBounded: a header repeated thousands of times with a
// malformed value yields at most maxHeaderErrors errors, so that a hook
// logging them stays short.
func TestHeaderErrorsBounded(t *testing.T) {
	h := http.Header{"Retry-After": make([]string, 5000)}
	for i := range h["Retry-After"] {
		h["Retry-After"][i] = "soon"
	}
	_, ok, err := retryHint(h, now)
	if n := len(errHeaders(t, err)); ok || n != maxHeaderErrors {
		t.Errorf("ok = %v with %d errors, want no hint and %d errors", ok, n, maxHeaderErrors)
	}
}

// checkHint fails t unless hint, ok and err keep retryHint's contract.
func checkHint(t *testing.T, hint Hint, ok bool, err error) {
	t.Helper()
	if hint.Wait < 0 { // maxHintWait is the largest Duration: above it is impossible
		t.Errorf("Wait = %v, want it not negative", hint.Wait)
	}
	if ok != (hint.Source != "") {
		t.Errorf("ok = %t with Source %q", ok, hint.Source)
	}
	if !ok && hint.Wait != 0 {
		t.Errorf("no hint, yet Wait = %v", hint.Wait)
	}
	errHeaders(t, err) // every error is a short *HeaderError
}

// FuzzRetryHint feeds the same hostile values to every source, alone and
// all together, so that each parser sees them first at least once.
func FuzzRetryHint(f *testing.F) {
	f.Add("1500", "Sun, 01 Jun 2025 12:00:30 GMT", "0", "6m0s")
	f.Add("12.5", "1.5", "0", "2025-06-01T12:00:10Z")
	f.Add("-1", "Sunday, 01-Jun-25 12:01:00 GMT", "0", `"default";r=0;t=30`)
	f.Add("NaN", "Sun Jun  1 12:02:00 2025", "0", "limit=100, remaining=0, reset=5")
	f.Add("", "Fri, 31 Dec 9999 23:59:59 GMT", "0", "1748779290")
	f.Add(digits500, "1e18", "-0", digits500)
	f.Add("+Inf", "0x10", "5", "99999999999999999999h")
	f.Fuzz(func(t *testing.T, ms, retryAfter, remaining, reset string) {
		resets := http.Header{
			"X-Ratelimit-Remaining-Requests":          {remaining},
			"X-Ratelimit-Reset-Requests":              {reset},
			"Anthropic-Ratelimit-Tokens-Remaining":    {remaining},
			"Anthropic-Ratelimit-Tokens-Reset":        {reset},
			"Anthropic-Ratelimit-Tokens-Limit":        {remaining},
			"Ratelimit-Policy":                        {reset},
			"Ratelimit":                               {reset},
			"Ratelimit-Remaining":                     {remaining},
			"Ratelimit-Reset":                         {reset},
			"X-Ratelimit-Remaining":                   {remaining},
			"X-Ratelimit-Reset":                       {reset},
			"X-Ratelimit-Limit-Requests":              {remaining},
			"Anthropic-Ratelimit-Output-Tokens-Reset": {retryAfter},
			"Date": {retryAfter}, // any Date moves every absolute time
		}
		for _, h := range []http.Header{
			{"Retry-After-Ms": {ms}},
			{"Retry-After": {retryAfter}},
			{"Retry-After": {retryAfter, ms}},
			resets,
		} {
			hint, ok, err := retryHint(h, now)
			checkHint(t, hint, ok, err)
		}
		resets["Retry-After-Ms"] = []string{ms}
		resets["Retry-After"] = []string{retryAfter}
		hint, ok, err := retryHint(resets, now)
		checkHint(t, hint, ok, err)
	})
}

// FuzzParseQuotas checks that no header value yields a quota outside its
// documented ranges, or a nextUnit or refillRate a caller could not use.
func FuzzParseQuotas(f *testing.F) {
	f.Add("100", "0", "1s", `"default";q=100;w=60, "daily";q=1000;w=86400`, `"default";r=0;t=30`)
	f.Add("9223372036854775807", "9223372036854775808", "2562047h47m16.854775808s", `100;w=60`, "limit=100, remaining=0, reset=5")
	f.Add("-1", "NaN", "2025-06-01T12:00:10Z", `"a";q=1;pk=:cHJvamVjdA==:;qu="requests"`, `"a\"b";r=1;t=1`)
	f.Add("1e3", "", "1748779290", `"unterminated`, `"x";r=`+digits500)
	f.Fuzz(func(t *testing.T, limit, remaining, reset, policy, ratelimit string) {
		h := http.Header{}
		for _, p := range []string{"Anthropic-Ratelimit-Requests-", "Anthropic-Ratelimit-Input-Tokens-"} {
			h.Set(p+"Limit", limit)
			h.Set(p+"Remaining", remaining)
			h.Set(p+"Reset", reset)
		}
		for _, suffix := range []string{"", "-Requests", "-Tokens"} {
			h.Set("X-Ratelimit-Limit"+suffix, limit)
			h.Set("X-Ratelimit-Remaining"+suffix, remaining)
			h.Set("X-Ratelimit-Reset"+suffix, reset)
		}
		h.Set("X-Ratelimit-Used", remaining)
		h.Set("X-Ratelimit-Resource", policy)
		h.Set("Ratelimit-Limit", limit)
		h.Set("Ratelimit-Remaining", remaining)
		h.Set("Ratelimit-Reset", reset)
		h.Set("Ratelimit-Policy", policy)
		h.Set("Ratelimit", ratelimit)

		qs, err := parseQuotas(h, now)
		errHeaders(t, err)
		for _, q := range qs {
			if q.Limit < -1 || q.Remaining < -1 || q.Reset < -1 || q.Window < 0 {
				t.Errorf("quota out of range: %+v", q)
			}
			if d := q.nextUnit(); d < 0 || d > max(q.Reset, 0) {
				t.Errorf("%+v.nextUnit() = %v, want within [0, Reset]", q, d)
			}
			if r := q.refillRate(); r < 0 || math.IsNaN(r) || math.IsInf(r, 0) {
				t.Errorf("%+v.refillRate() = %v, want finite and >= 0", q, r)
			}
		}
	})
}

// FuzzRetryHintFromBody checks that no body panics the Google parser or
// yields a negative wait or an error other than *HeaderError.
func FuzzRetryHintFromBody(f *testing.F) {
	f.Add([]byte(`{"error":{"code":429,"status":"RESOURCE_EXHAUSTED","details":[{"@type":"type.googleapis.com/google.rpc.RetryInfo","retryDelay":"22s"},{"@type":"type.googleapis.com/google.rpc.QuotaFailure","violations":[{"quotaId":"GenerateRequestsPerDayPerProjectPerModel-FreeTier"}]}]}}`))
	f.Add([]byte(`[{"error":{"details":[{"@type":"google.rpc.RetryInfo","retryDelay":"0.000001s"}]}}]`))
	f.Add([]byte(`{"error":{"details":[{"@type":"type.googleapis.com/google.rpc.RetryInfo","retryDelay":"-1s"}]}}`))
	f.Add([]byte(`{"error":"rate_limited"}`))
	f.Add([]byte(`<html>`))
	f.Fuzz(func(t *testing.T, body []byte) {
		hint, ok, _, err := retryHintFromBody(body)
		checkHint(t, hint, ok, err)
	})
}
