package pacetest

import (
	"math"
	"net/http"
	"strconv"
	"time"
)

// A Dialect is a vendor's way of announcing rate limits in response headers.
// Every dialect also sends Retry-After on a 429.
type Dialect int

const (
	// None sends no rate-limit headers besides Retry-After.
	None Dialect = iota
	// OpenAI sends x-ratelimit-{limit,remaining,reset}-{requests,tokens};
	// reset is a Go duration ("1s", "6m0s") until the bucket is full again.
	OpenAI
	// Anthropic sends anthropic-ratelimit-{requests,tokens}-{limit,remaining,reset};
	// reset is the RFC 3339 time at which the bucket is full again.
	Anthropic
	// IETF sends the RateLimit-Policy and RateLimit fields of the IETF
	// httpapi draft: a "default" policy for requests and a "tokens" policy
	// for tokens, with t the seconds until one more unit is available.
	IETF
	// Legacy sends RateLimit-Limit, RateLimit-Remaining and RateLimit-Reset,
	// the seconds until one more unit is available, for the request limit,
	// or for the token limit when requests are not limited.
	Legacy
	// GitHub sends x-ratelimit-{limit,remaining,used,reset,resource}; reset
	// is the Unix time in seconds at which one more unit is available. Like
	// Legacy, it describes the request limit, else the token limit.
	GitHub
)

var dialectNames = [...]string{"None", "OpenAI", "Anthropic", "IETF", "Legacy", "GitHub"}

// String returns the dialect's name, as written in Go.
func (d Dialect) String() string {
	if d >= 0 && int(d) < len(dialectNames) {
		return dialectNames[d]
	}
	return "Dialect(" + strconv.Itoa(int(d)) + ")"
}

// quota is the state of one limit at the instant of an answer, as the
// rate-limit headers describe it. A zero limit means the limit does not
// exist and gets no headers.
type quota struct {
	limit     int
	remaining int
	untilNext time.Duration // until remaining goes up by one; zero when full
	untilFull time.Duration // until remaining is the whole limit again
	window    time.Duration // the period the limit is stated over (IETF's w)
}

// bucketQuota describes a token bucket of size limit holding tokens,
// refilled at rate per second.
func bucketQuota(limit int, tokens, rate float64) quota {
	q := quota{
		limit:     limit,
		remaining: max(0, int(math.Floor(tokens))),
		untilFull: seconds((float64(limit) - tokens) / rate),
		window:    seconds(float64(limit) / rate),
	}
	if tokens < float64(limit) {
		q.untilNext = seconds((math.Floor(tokens) + 1 - tokens) / rate)
	}
	return q
}

// seconds converts to a Duration, rounding up to the millisecond so that a
// client waiting exactly that long finds the unit there.
func seconds(s float64) time.Duration {
	if s <= 0 {
		return 0
	}
	d := time.Duration(math.Ceil(s*1e3-1e-6)) * time.Millisecond
	return d
}

// ceilSeconds rounds d up to whole seconds, for fields that carry integers.
func ceilSeconds(d time.Duration) int64 {
	return int64((d + time.Second - 1) / time.Second)
}

func writeRateHeaders(h http.Header, d Dialect, now time.Time, req, tok quota) {
	type named struct {
		name string
		b    quota
	}
	var bs []named
	if req.limit > 0 {
		bs = append(bs, named{"requests", req})
	}
	if tok.limit > 0 {
		bs = append(bs, named{"tokens", tok})
	}
	if len(bs) == 0 {
		return
	}
	itoa := strconv.Itoa
	switch d {
	case OpenAI:
		for _, x := range bs {
			h.Set("X-Ratelimit-Limit-"+x.name, itoa(x.b.limit))
			h.Set("X-Ratelimit-Remaining-"+x.name, itoa(x.b.remaining))
			h.Set("X-Ratelimit-Reset-"+x.name, x.b.untilFull.String())
		}
	case Anthropic:
		for _, x := range bs {
			h.Set("Anthropic-Ratelimit-"+x.name+"-Limit", itoa(x.b.limit))
			h.Set("Anthropic-Ratelimit-"+x.name+"-Remaining", itoa(x.b.remaining))
			full := now.Add(x.b.untilFull)
			// RFC 3339 without fractions: round up so the time is not early.
			if t := full.Truncate(time.Second); t.Before(full) {
				full = t.Add(time.Second)
			}
			h.Set("Anthropic-Ratelimit-"+x.name+"-Reset", full.UTC().Format(time.RFC3339))
		}
	case IETF:
		var policy, state string
		for i, x := range bs {
			id := `"default"`
			if x.name == "tokens" {
				id = `"tokens"`
			}
			if i > 0 {
				policy += ", "
				state += ", "
			}
			window := max(1, ceilSeconds(x.b.window))
			policy += id + ";q=" + itoa(x.b.limit) + ";w=" + strconv.FormatInt(window, 10)
			state += id + ";r=" + itoa(x.b.remaining) + ";t=" + strconv.FormatInt(ceilSeconds(x.b.untilNext), 10)
		}
		h.Set("RateLimit-Policy", policy)
		h.Set("RateLimit", state)
	case Legacy:
		b := bs[0].b
		h.Set("RateLimit-Limit", itoa(b.limit))
		h.Set("RateLimit-Remaining", itoa(b.remaining))
		h.Set("RateLimit-Reset", strconv.FormatInt(ceilSeconds(b.untilNext), 10))
	case GitHub:
		b := bs[0].b
		h.Set("X-Ratelimit-Limit", itoa(b.limit))
		h.Set("X-Ratelimit-Remaining", itoa(b.remaining))
		h.Set("X-Ratelimit-Used", itoa(b.limit-b.remaining))
		next := now.Add(b.untilNext)
		h.Set("X-Ratelimit-Reset", strconv.FormatInt(next.Unix()+boolInt(next.Nanosecond() > 0), 10))
		h.Set("X-Ratelimit-Resource", "core")
	}
}

func boolInt(b bool) int64 {
	if b {
		return 1
	}
	return 0
}
