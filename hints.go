package pacehttp

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"net/http"
	"strings"
	"time"
	"unicode/utf8"
)

// maxHintWait is the longest wait a hint can carry, about 292 years. A server
// that asks for more (a 500-digit Retry-After, a reset in the year 9999) gets
// exactly this: such a value is valid and means "not in any useful time",
// which the retry layer compares with its own cap and gives up. Saturating
// matters: an overflow would wrap into a negative or short wait and turn a
// refusal into a retry storm.
const maxHintWait = time.Duration(math.MaxInt64)

// A Hint is the server's word on when to try again.
//
// Servers say it in several ways: Retry-After or retry-after-ms on the
// response, rate-limit headers that show a quota at zero together with its
// reset, or, for Google APIs, a RetryInfo in the error body. retryHint and
// retryHintFromBody reduce all of them to this one value.
type Hint struct {
	// Wait is the time from the response until the server expects to
	// accept the request again. It is never negative and saturates at
	// maxHintWait instead of overflowing.
	Wait time.Duration

	// Source is the lower-case name of the header that supplied Wait, such
	// as "retry-after" or "x-ratelimit-reset-requests", or
	// "google.rpc.RetryInfo" for a hint read from a response body.
	Source string

	// Ignored reports the hints the server sent malformed, which were
	// skipped as if absent: a *HeaderError each (at most maxHeaderErrors),
	// joined with errors.Join. It may be set whether or not Source is, and
	// reaches hooks as Event.IgnoredHints.
	Ignored error
}

// A HeaderError reports a rate-limit hint that was malformed or hostile and
// was therefore ignored, as if absent. It is informative: parsing goes on
// with the next source, so a response may carry both a HeaderError and a
// valid hint. DefaultClassifier hands them on in Hint.Ignored, and the
// retry layer's EventRetry and EventGiveUp carry them as IgnoredHints, so
// that a hook (LogHook among them) shows why a server's hint was not
// followed.
type HeaderError struct {
	// Header is the lower-case header name or, for a hint in a response
	// body, the message it was read from, such as "google.rpc.RetryInfo".
	Header string

	// Value is the value as received, in full.
	Value string

	// Err says what is wrong with Value. It never repeats Value, so that
	// Error stays short whatever the server sent.
	Err error
}

// Error returns a one-line description. Value is quoted and cut to 64 bytes,
// so a hostile value can neither flood a log nor forge lines in it.
func (e *HeaderError) Error() string {
	const keep = 64
	v := e.Value
	if len(v) <= keep {
		return fmt.Sprintf("pacehttp: ignored %s: %q: %v", e.Header, v, e.Err)
	}
	// Cut before a multi-byte character rather than inside it, but back off
	// no further than one character: invalid UTF-8 has no start to find.
	n := keep
	for n > keep-utf8.UTFMax+1 && !utf8.RuneStart(v[n]) {
		n--
	}
	return fmt.Sprintf("pacehttp: ignored %s: %q... (%d bytes): %v", e.Header, v[:n], len(v), e.Err)
}

// Unwrap returns e.Err.
func (e *HeaderError) Unwrap() error { return e.Err }

var (
	errEmpty     = errors.New("empty value")
	errNumber    = errors.New("not a non-negative decimal number")
	errDelay     = errors.New("neither delta-seconds nor an HTTP-date")
	errDuration  = errors.New(`not a duration such as "1.5s", "6m0s" or "30"`)
	errTimestamp = errors.New("not an RFC 3339 timestamp")
	errList      = errors.New("not a structured-field list of rate-limit items")
)

// retryHint returns the first hint in h that applies, in this order:
//
//  1. retry-after-ms: decimal milliseconds, fractions allowed.
//  2. Retry-After: delta-seconds (fractions allowed) or an HTTP-date in any
//     format http.ParseTime knows; a date in the past means no wait.
//  3. A quota the rate-limit headers report exhausted (remaining 0; see
//     parseQuotas): the wait until its next unit returns, quota.nextUnit.
//     When several are exhausted, the longest wins, since the request needs
//     all of them.
//
// Absolute times (an HTTP-date, RFC 3339 and epoch resets) are measured
// from serverNow, which is now unless the response's Date shows a server
// clock that is off.
//
// A header repeated with different values yields its largest valid value,
// never their sum: the conservative reading, since waiting too little only
// earns another 429.
//
// A malformed value is skipped as if absent and reported in err as a
// *HeaderError, several (at most maxHeaderErrors) joined with errors.Join;
// err may be non-nil when ok is true.
func retryHint(h http.Header, now time.Time) (hint Hint, ok bool, err error) {
	r := &headerReader{h: h, now: now}
	if d, ok := field(r, "retry-after-ms", parseMillis, longer); ok {
		return Hint{Wait: d, Source: "retry-after-ms"}, true, r.err()
	}
	if d, ok := field(r, "retry-after", r.retryAfter, longer); ok {
		return Hint{Wait: d, Source: "retry-after"}, true, r.err()
	}
	for _, q := range r.quotas() {
		if !q.exhausted() {
			continue
		}
		if w := q.nextUnit(); !ok || w > hint.Wait {
			hint, ok = Hint{Wait: w, Source: q.resetHeader()}, true
		}
	}
	return hint, ok, r.err()
}

// A quota is one budget a server reports in rate-limit headers: Limit units
// per window, Remaining of them left now, and Reset until the budget is
// restored. Servers restore it in one of two ways, told apart by Refill:
// a bucket that refills continuously and is full again after Reset (OpenAI,
// Anthropic), or a window whose whole quota returns at once at Reset (GitHub
// and the IETF drafts). Unknown counts and durations are -1, an unknown
// Window is 0.
//
// The retry layer asks an exhausted quota how long until its next unit
// (nextUnit); the pacer asks any quota how fast it refills (refillRate).
type quota struct {
	Name      string        // "requests", "tokens", "input-tokens", "output-tokens", or an IETF policy name
	Limit     int64         // -1 when unknown
	Remaining int64         // -1 when unknown
	Reset     time.Duration // time from now until the budget resets; -1 when unknown
	Window    time.Duration // the quota's window when the server states it (IETF w=); 0 when unknown
	Refill    bool          // true: Reset is when the bucket is full again by continuous refill; false: the whole quota returns at once at Reset
	Source    string        // header family: "anthropic", "openai", "ietf", "ratelimit" or "github"
}

// exhausted reports a quota at 0 whose reset is known: one worth waiting
// for.
func (q quota) exhausted() bool { return q.Remaining == 0 && q.Reset >= 0 }

// nextUnit returns how long until one more unit of q is available: 0 unless
// q is known to be exhausted (Remaining 0) with a known Reset; for a
// refilling bucket the time one unit takes to drip back, rounded up; else
// Reset, when the whole quota returns.
func (q quota) nextUnit() time.Duration {
	if !q.exhausted() {
		return 0
	}
	if n := time.Duration(q.Limit - q.Remaining); q.Refill && n > 0 {
		d := q.Reset / n
		if q.Reset%n != 0 {
			d++
		}
		return d
	}
	return q.Reset
}

// refillRate returns the units per second q's headers imply, 0 when they do
// not say: Limit per stated Window; for a refilling bucket the missing units
// over the time to refill them; else Limit over Reset.
func (q quota) refillRate() float64 {
	switch {
	case q.Window > 0 && q.Limit > 0:
		return float64(q.Limit) / q.Window.Seconds()
	case q.Refill && q.Reset > 0 && q.Remaining >= 0 && q.Limit > q.Remaining:
		return float64(q.Limit-q.Remaining) / q.Reset.Seconds()
	case q.Reset > 0 && q.Limit > 0:
		return float64(q.Limit) / q.Reset.Seconds()
	}
	return 0
}

// resetHeader names the header that supplied q.Reset, as Hint.Source.
func (q quota) resetHeader() string {
	switch q.Source {
	case "anthropic":
		return "anthropic-ratelimit-" + q.Name + "-reset"
	case "openai":
		return "x-ratelimit-reset-" + q.Name
	case "ietf":
		return "ratelimit"
	case "ratelimit":
		return "ratelimit-reset"
	}
	return "x-ratelimit-reset"
}

// parseQuotas returns every quota h reports, in the order Anthropic, OpenAI,
// IETF (current and older drafts), GitHub. A quota appears when at least one
// of its limit, remaining or reset was readable. A repeated header takes
// its most conservative value: the smallest limit and remaining, the
// longest reset. Malformed values are ignored and reported in err as
// *HeaderError; a malformed RateLimit or RateLimit-Policy field is ignored
// whole, as RFC 8941 prescribes for structured fields.
func parseQuotas(h http.Header, now time.Time) ([]quota, error) {
	r := &headerReader{h: h, now: now}
	qs := r.quotas()
	return qs, r.err()
}

// headerReader reads hints from one response's headers, collecting the
// errors met on the way.
type headerReader struct {
	h    http.Header
	now  time.Time // the local clock when the response arrived
	errs []error

	ref       time.Time // serverNow, once clockRead
	clockRead bool
}

// maxHeaderErrors bounds the errors kept for one response: a server may
// repeat a malformed header thousands of times, and each error is logged.
const maxHeaderErrors = 8

func (r *headerReader) fail(name, value string, err error) {
	if len(r.errs) < maxHeaderErrors {
		r.errs = append(r.errs, &HeaderError{Header: name, Value: value, Err: err})
	}
}

func (r *headerReader) err() error { return errors.Join(r.errs...) }

// field parses every line of the header name and folds the valid values
// with keep; ok is false when there is none.
func field[T any](r *headerReader, name string, parse func(string) (T, error), keep func(T, T) T) (v T, ok bool) {
	for _, raw := range r.h.Values(name) {
		s := strings.Trim(raw, " \t")
		var x T
		err := errEmpty
		if s != "" {
			x, err = parse(s)
		}
		if err != nil {
			r.fail(name, raw, err)
			continue
		}
		if ok {
			v = keep(v, x)
		} else {
			v, ok = x, true
		}
	}
	return v, ok
}

func longer(a, b time.Duration) time.Duration { return max(a, b) }
func fewer(a, b int64) int64                  { return min(a, b) }

// count returns the smallest valid count in the header name, -1 if none.
func (r *headerReader) count(name string, parse func(string) (int64, error)) int64 {
	if n, ok := field(r, name, parse, fewer); ok {
		return n
	}
	return -1
}

// wait returns the longest valid wait in the header name, -1 if none.
func (r *headerReader) wait(name string, parse func(string) (time.Duration, error)) time.Duration {
	if d, ok := field(r, name, parse, longer); ok {
		return d
	}
	return -1
}

func (r *headerReader) quotas() []quota {
	var qs []quota
	add := func(q quota) {
		if q.Limit >= 0 || q.Remaining >= 0 || q.Reset >= 0 {
			qs = append(qs, q)
		}
	}
	for _, name := range []string{"requests", "tokens", "input-tokens", "output-tokens"} {
		p := "anthropic-ratelimit-" + name
		add(quota{Name: name, Limit: r.count(p+"-limit", parseCount), Remaining: r.count(p+"-remaining", parseCount),
			Reset: r.wait(p+"-reset", r.timestamp), Refill: true, Source: "anthropic"})
	}
	for _, name := range []string{"requests", "tokens"} {
		add(quota{Name: name, Limit: r.count("x-ratelimit-limit-"+name, parseCount),
			Remaining: r.count("x-ratelimit-remaining-"+name, parseCount),
			Reset:     r.wait("x-ratelimit-reset-"+name, parseGoDuration), Refill: true, Source: "openai"})
	}
	qs = append(qs, r.ietf()...)
	// Older IETF drafts: RateLimit-Limit may carry a policy list after the
	// number ("100, 100;w=60"), of which only the number is read.
	add(quota{Name: "requests", Limit: r.count("ratelimit-limit", parseLeadingCount),
		Remaining: r.count("ratelimit-remaining", parseCount),
		Reset:     r.wait("ratelimit-reset", parseSeconds), Source: "ratelimit"})

	limit, remaining := r.count("x-ratelimit-limit", parseCount), r.count("x-ratelimit-remaining", parseCount)
	if used := r.count("x-ratelimit-used", parseCount); remaining < 0 && limit >= 0 && used >= 0 {
		remaining = max(limit-used, 0)
	}
	name := strings.Trim(r.h.Get("x-ratelimit-resource"), " \t")
	if name == "" {
		name = "requests"
	}
	add(quota{Name: name, Limit: limit, Remaining: remaining, Reset: r.wait("x-ratelimit-reset", r.epoch), Source: "github"})
	return qs
}

// ietf reads RateLimit-Policy and RateLimit and joins them by policy name:
// a RateLimit item takes the limit and window of the policy of its name; a
// policy no item mentions is kept for the rate it states.
func (r *headerReader) ietf() []quota {
	policies := r.list("ratelimit-policy")
	qs := r.list("ratelimit")
	byName := make(map[string]int, len(policies))
	for i := len(policies) - 1; i >= 0; i-- { // the first policy of a name wins
		byName[policies[i].Name] = i
	}
	used := make([]bool, len(policies))
	for i := range qs {
		if j, ok := byName[qs[i].Name]; ok {
			p := policies[j]
			if p.Limit >= 0 {
				qs[i].Limit = p.Limit
			}
			qs[i].Window, used[j] = p.Window, true
		}
	}
	for j, p := range policies {
		if !used[j] {
			qs = append(qs, p)
		}
	}
	return qs
}

// list parses the structured field name, its lines joined with commas as
// RFC 9110 prescribes for list fields. A malformed field is reported and
// ignored whole.
func (r *headerReader) list(name string) []quota {
	vs := r.h.Values(name)
	if len(vs) == 0 {
		return nil
	}
	v := strings.Join(vs, ", ")
	qs, err := parseIETFItems(v)
	if err != nil {
		r.fail(name, v, err)
		return nil
	}
	return qs
}

// parseIETFItems parses a RateLimit or RateLimit-Policy field. The current
// draft's form is a list of named items with parameters:
//
//	"default";q=100;w=60, "daily";q=1000;w=86400   (RateLimit-Policy)
//	"default";r=50;t=30                            (RateLimit)
//
// q (quota), w (window seconds), r (remaining) and t (seconds to reset) are
// read wherever they appear; other parameters (pk, qu, ...) are ignored. An
// older draft's form, a dictionary "limit=100, remaining=0, reset=5", and a
// bare number as the quota ("100;w=60") give a quota named "requests".
func parseIETFItems(v string) ([]quota, error) {
	items, ok := splitOutside(v, ',')
	if !ok {
		return nil, errList
	}
	if k, _, isDict := strings.Cut(trimOWS(items[0]), "="); isDict && isKey(k) {
		return parseIETFDict(items)
	}
	qs := make([]quota, 0, len(items))
	for _, item := range items {
		parts, _ := splitOutside(item, ';')
		q := quota{Limit: -1, Remaining: -1, Reset: -1, Source: "ietf"}
		head := trimOWS(parts[0])
		if isDigits(head) {
			q.Name, q.Limit = "requests", parseCountSat(head)
		} else if q.Name, ok = sfName(head); !ok {
			return nil, errList
		}
		for _, p := range parts[1:] {
			k, val, _ := strings.Cut(trimOWS(p), "=")
			if !isKey(k) {
				return nil, errList
			}
			var err error
			switch k {
			case "q":
				q.Limit, err = parseCount(val)
			case "r":
				q.Remaining, err = parseCount(val)
			case "w":
				q.Window, err = parseSeconds(val)
			case "t":
				q.Reset, err = parseSeconds(val)
			}
			if err != nil {
				return nil, errList
			}
		}
		qs = append(qs, q)
	}
	return qs, nil
}

func parseIETFDict(items []string) ([]quota, error) {
	q := quota{Name: "requests", Limit: -1, Remaining: -1, Reset: -1, Source: "ietf"}
	for _, item := range items {
		parts, _ := splitOutside(item, ';') // parameters carry nothing we use
		k, val, _ := strings.Cut(trimOWS(parts[0]), "=")
		if !isKey(k) {
			return nil, errList
		}
		var err error
		switch k {
		case "limit":
			q.Limit, err = parseCount(val)
		case "remaining":
			q.Remaining, err = parseCount(val)
		case "reset":
			q.Reset, err = parseSeconds(val)
		}
		if err != nil {
			return nil, errList
		}
	}
	return []quota{q}, nil
}

// splitOutside splits s at sep where sep is not inside a quoted string;
// ok is false when a string is left open.
func splitOutside(s string, sep byte) (parts []string, ok bool) {
	start, quoted := 0, false
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case quoted && c == '\\':
			i++
		case c == '"':
			quoted = !quoted
		case !quoted && c == sep:
			parts = append(parts, s[start:i])
			start = i + 1
		}
	}
	return append(parts, s[start:]), !quoted
}

// sfName decodes a structured-field string or token used as a policy name.
func sfName(s string) (string, bool) {
	if len(s) >= 2 && s[0] == '"' && s[len(s)-1] == '"' {
		var b strings.Builder
		for i := 1; i < len(s)-1; i++ {
			c := s[i]
			if c == '\\' {
				if i++; i == len(s)-1 || s[i] != '"' && s[i] != '\\' {
					return "", false
				}
				c = s[i]
			} else if c == '"' || c < 0x20 || c > 0x7e {
				return "", false
			}
			b.WriteByte(c)
		}
		return b.String(), true
	}
	if s == "" || !isAlpha(s[0]) && s[0] != '*' {
		return "", false
	}
	for i := 0; i < len(s); i++ {
		if c := s[i]; !isAlpha(c) && !isDigit(c) && !strings.ContainsRune("!#$%&'*+-.^_`|~:/", rune(c)) {
			return "", false
		}
	}
	return s, true
}

// isKey reports whether s is a structured-field parameter key.
func isKey(s string) bool {
	if s == "" || (s[0] < 'a' || s[0] > 'z') && s[0] != '*' {
		return false
	}
	for i := 0; i < len(s); i++ {
		if c := s[i]; (c < 'a' || c > 'z') && !isDigit(c) && !strings.ContainsRune("_-.*", rune(c)) {
			return false
		}
	}
	return true
}

func trimOWS(s string) string { return strings.Trim(s, " \t") }
func isDigit(c byte) bool     { return '0' <= c && c <= '9' }
func isAlpha(c byte) bool     { return 'a' <= c|0x20 && c|0x20 <= 'z' }

func isDigits(s string) bool {
	for i := 0; i < len(s); i++ {
		if !isDigit(s[i]) {
			return false
		}
	}
	return s != ""
}

// parseCount parses a non-negative integer. A count too large for int64 is
// still a valid count and saturates.
func parseCount(s string) (int64, error) {
	if !isDigits(s) {
		return 0, errNumber
	}
	return parseCountSat(s), nil
}

// parseCountSat parses a string of digits, saturating at math.MaxInt64.
func parseCountSat(s string) int64 {
	var n int64
	for i := 0; i < len(s); i++ {
		d := int64(s[i] - '0')
		if n > (math.MaxInt64-d)/10 {
			return math.MaxInt64
		}
		n = n*10 + d
	}
	return n
}

// parseLeadingCount parses the number before any "," or ";".
func parseLeadingCount(s string) (int64, error) {
	s, _, _ = strings.Cut(s, ",")
	s, _, _ = strings.Cut(s, ";")
	return parseCount(trimOWS(s))
}

// parseDecimal parses a non-negative decimal number, digits with an optional
// fraction ("12", "1.5"), as a count of unit. Signs, exponents, "Inf", "NaN"
// and hexadecimal are refused: no server means them, and strconv.ParseFloat
// would accept them. Digits finer than a nanosecond are dropped; a value
// beyond maxHintWait saturates. unit must be at most an hour.
func parseDecimal(s string, unit time.Duration) (time.Duration, error) {
	whole, frac, dot := strings.Cut(s, ".")
	if !isDigits(whole) || dot && !isDigits(frac) {
		return 0, errNumber
	}
	n := parseCountSat(whole)
	if n > int64(maxHintWait/unit) {
		return maxHintWait, nil
	}
	d := time.Duration(n) * unit
	// f is the fraction in billionths of unit, computed exactly in integers:
	// units of a second or more are whole seconds, smaller ones divide one.
	var f time.Duration
	for i := 0; i < 9; i++ {
		f *= 10
		if i < len(frac) {
			f += time.Duration(frac[i] - '0')
		}
	}
	if unit >= time.Second {
		f *= unit / time.Second
	} else {
		f = f * unit / time.Second
	}
	if d > maxHintWait-f {
		return maxHintWait, nil
	}
	return d + f, nil
}

func parseSeconds(s string) (time.Duration, error) { return parseDecimal(s, time.Second) }
func parseMillis(s string) (time.Duration, error)  { return parseDecimal(s, time.Millisecond) }

// goUnits are the units time.ParseDuration knows.
var goUnits = map[string]time.Duration{
	"ns": time.Nanosecond, "us": time.Microsecond, "µs": time.Microsecond, "μs": time.Microsecond,
	"ms": time.Millisecond, "s": time.Second, "m": time.Minute, "h": time.Hour,
}

// parseGoDuration parses a duration as OpenAI sends it, in time.Duration's
// syntax ("6m0s", "1.5s", "20ms") or as plain seconds ("30"). Unlike
// time.ParseDuration it refuses signs and saturates instead of failing on
// overflow, so that a huge reset reads as huge rather than as malformed.
func parseGoDuration(s string) (time.Duration, error) {
	if d, err := parseSeconds(s); err == nil || s == "" {
		return d, err
	}
	var total time.Duration
	for s != "" {
		i := 0
		for i < len(s) && (isDigit(s[i]) || s[i] == '.') {
			i++
		}
		j := i
		for j < len(s) && !isDigit(s[j]) && s[j] != '.' {
			j++
		}
		unit, ok := goUnits[s[i:j]]
		if !ok {
			return 0, errDuration
		}
		d, err := parseDecimal(s[:i], unit)
		if err != nil {
			return 0, errDuration
		}
		total = min(total, maxHintWait-d) + d // saturating total+d
		s = s[j:]
	}
	return total, nil
}

// until is the non-negative time from now to t; time.Time.Sub saturates.
func until(t, now time.Time) time.Duration { return max(t.Sub(now), 0) }

// clockTolerance is how far a response's Date may be from the local clock
// and still be taken to agree with it. Date is cut to the second and
// stamped before the answer travelled, so with agreeing clocks it lags by
// up to a second plus the latency; 2s leaves a second for latency and
// ordinary drift.
const clockTolerance = 2 * time.Second

// serverNow returns the instant from which the absolute times of a response
// with headers h are measured (HTTP-date Retry-After, RFC 3339 and epoch
// resets), received at now by the local clock.
//
// The rule: when the response's Date parses and differs from now by
// clockTolerance or more, the server's clock is not ours and its times mean
// its clock, so they are measured from Date, as RFC 9110 lets a recipient
// do. Otherwise now, which is finer than Date's whole seconds: a server
// whose clock agrees with ours loses no precision. A wait measured from
// Date is never short: Date is at or before the server's clock.
func serverNow(h http.Header, now time.Time) time.Time {
	v := h.Get("Date")
	if v == "" {
		return now
	}
	date, err := http.ParseTime(strings.Trim(v, " \t"))
	if err != nil || date.Sub(now) < clockTolerance && now.Sub(date) < clockTolerance {
		return now
	}
	return date
}

// clock returns serverNow for r's response, read once and only when an
// absolute time needs it.
func (r *headerReader) clock() time.Time {
	if !r.clockRead {
		r.ref, r.clockRead = serverNow(r.h, r.now), true
	}
	return r.ref
}

// retryAfter parses a Retry-After value: delta-seconds or an HTTP-date.
func (r *headerReader) retryAfter(s string) (time.Duration, error) {
	if isDigit(s[0]) {
		if d, err := parseSeconds(s); err == nil {
			return d, nil
		}
		return 0, errDelay
	}
	t, err := http.ParseTime(s)
	if err != nil {
		return 0, errDelay // not err: it quotes the whole value
	}
	return until(t, r.clock()), nil
}

// timestamp parses an RFC 3339 reset time, as Anthropic sends it.
func (r *headerReader) timestamp(s string) (time.Duration, error) {
	t, err := time.Parse(time.RFC3339, s)
	if err != nil {
		return 0, errTimestamp
	}
	return until(t, r.clock()), nil
}

// epoch parses a reset time in Unix seconds, as GitHub sends it.
func (r *headerReader) epoch(s string) (time.Duration, error) {
	since, err := parseSeconds(s)
	if err != nil {
		return 0, err
	}
	if since == maxHintWait {
		return maxHintWait, nil
	}
	if since < epochFloor {
		// Too small for a timestamp of this century: some servers put the
		// seconds until the reset here, not the instant of it.
		return since, nil
	}
	return until(time.Unix(0, 0).Add(since), r.clock()), nil
}

// epochFloor tells the two readings of x-ratelimit-reset apart: 10^8 seconds
// after the epoch is March 1973, and as a delay more than three years, so a
// smaller value can only be a delay.
const epochFloor = 1e8 * time.Second

// retryHintFromBody reads the hint in a Google API error body, where Gemini
// and other Google APIs put it instead of a header:
//
//	{"error": {"code": 429, "status": "RESOURCE_EXHAUSTED", "details": [
//	  {"@type": "type.googleapis.com/google.rpc.RetryInfo", "retryDelay": "22s"},
//	  {"@type": "type.googleapis.com/google.rpc.QuotaFailure",
//	   "violations": [{"quotaId": "GenerateRequestsPerDayPerProjectPerModel-FreeTier"}]}]}}
//
// A body holding a JSON array of such objects is read too. ok reports a
// RetryInfo hint, the longest if there are several, with Source
// "google.rpc.RetryInfo". daily reports a QuotaFailure violation of a per-day
// quota (a quotaId containing "PerDay", in any case): retrying within
// minutes is then pointless, whatever retryDelay says. err reports a body or
// retryDelay that could not be read, as *HeaderError. The caller bounds how
// much of the body it reads.
func retryHintFromBody(body []byte) (hint Hint, ok bool, daily bool, err error) {
	type status struct {
		Error struct {
			Details []struct {
				Type       string          `json:"@type"`
				RetryDelay json.RawMessage `json:"retryDelay"`
				Violations []struct {
					QuotaID string `json:"quotaId"`
				} `json:"violations"`
			} `json:"details"`
		} `json:"error"`
	}
	var all []status
	if b := bytes.TrimLeft(body, " \t\r\n"); len(b) > 0 && b[0] == '[' {
		err = json.Unmarshal(body, &all)
	} else {
		all = make([]status, 1)
		err = json.Unmarshal(body, &all[0])
	}
	if err != nil {
		err = fmt.Errorf("not a Google API error body: %w", err)
		return Hint{}, false, false, &HeaderError{Header: "google.rpc.Status", Value: string(body), Err: err}
	}
	var errs []error
	for _, s := range all {
		for _, d := range s.Error.Details {
			switch d.Type[strings.LastIndexByte(d.Type, '/')+1:] {
			case "google.rpc.RetryInfo":
				w, perr := parseProtoDuration(d.RetryDelay)
				if perr != nil {
					errs = append(errs, &HeaderError{Header: "google.rpc.RetryInfo", Value: string(d.RetryDelay), Err: perr})
				} else if !ok || w > hint.Wait {
					hint, ok = Hint{Wait: w, Source: "google.rpc.RetryInfo"}, true
				}
			case "google.rpc.QuotaFailure":
				for _, v := range d.Violations {
					daily = daily || strings.Contains(strings.ToLower(v.QuotaID), "perday")
				}
			}
		}
	}
	return hint, ok, daily, errors.Join(errs...)
}

// parseProtoDuration parses the JSON form of a google.protobuf.Duration,
// decimal seconds with an "s" suffix ("22s", "0.000001s"). Negative
// durations are valid protobuf but not a valid wait.
func parseProtoDuration(raw json.RawMessage) (time.Duration, error) {
	var s string
	if err := json.Unmarshal(raw, &s); err != nil {
		return 0, errDuration
	}
	num, ok := strings.CutSuffix(s, "s")
	if !ok {
		return 0, errDuration
	}
	d, err := parseSeconds(num)
	if err != nil {
		return 0, errDuration
	}
	return d, nil
}
