package pacetest

import (
	"math"
	"time"

	"golang.org/x/time/rate"
)

// Limits are the admission rules of one set of buckets, as Config.Models
// gives a model. Each field means what the Config field of the same name
// means. Several limits may be set together; a request is admitted only
// when every one of them has room, and then counts against each. The zero
// Limits admits everything.
type Limits struct {
	Rate        float64
	Burst       int
	Window      time.Duration
	Quota       int
	Sliding     bool
	TokenRate   float64
	TokenBurst  int
	MaxInFlight int
}

// withDefaults fills the bucket sizes left at zero.
func (l Limits) withDefaults() Limits {
	if l.Burst <= 0 {
		l.Burst = max(1, int(l.Rate))
	}
	if l.TokenBurst <= 0 {
		l.TokenBurst = max(1, int(l.TokenRate))
	}
	return l
}

// limitSet is the state of one set of Limits: one credential's, or one
// model's under it. Its methods take the time, so that the bound's oracle
// can run the same rules as the server, faster than real time.
type limitSet struct {
	lim      Limits
	shared   bool // lim follows the Config's own limits (SetRate, Schedule)
	req      *rate.Limiter
	tok      *rate.Limiter // nil when tokens are not limited
	win      window
	inFlight int
	boxUntil time.Time // the end of a penalty; zero when none
	counts   *Counts   // nil when the set is not counted on its own
}

func newLimitSet(l Limits, shared bool, start time.Time) *limitSet {
	s := &limitSet{
		lim:    l,
		shared: shared,
		req:    rate.NewLimiter(rate.Limit(max(l.Rate, 0)), l.Burst),
		win:    window{size: l.Window, sliding: l.Sliding, start: start},
	}
	s.req.SetLimitAt(start, rate.Limit(max(l.Rate, 0)))
	if l.TokenRate > 0 {
		s.tok = rate.NewLimiter(rate.Limit(l.TokenRate), l.TokenBurst)
	}
	return s
}

// setRate changes the request rate from at on; tokens in the bucket stay.
// While requests are unlimited the bucket is neither used nor refilled, so
// it resumes where it was.
func (s *limitSet) setRate(at time.Time, r float64) {
	s.lim.Rate = r
	s.req.SetLimitAt(at, rate.Limit(max(r, 0)))
}

// refusal is why a limit refused a request now, and for how long.
type refusal struct {
	// wait is the least time until the limits that refused could admit
	// the request, if nothing else changed; zero for the concurrency cap,
	// whose wait depends on when requests end.
	wait   time.Duration
	reason string
}

// check reports whether every limit of the set has room for one request
// costing cost at now, without taking anything. A refusal carries the
// longest wait of the limits that refused.
func (s *limitSet) check(now time.Time, cost int) (refusal, bool) {
	var r refusal
	if s.lim.Rate > 0 {
		if have := s.req.TokensAt(now); have < 1 {
			r = refusal{wait: durationOf((1 - have) / s.lim.Rate), reason: "requests"}
		}
	}
	if s.win.size > 0 {
		if w, ok := s.win.wait(now, s.lim.Quota); !ok && w > r.wait {
			r = refusal{wait: w, reason: "window"}
		}
	}
	if s.tok != nil {
		if have := s.tok.TokensAt(now); have < float64(cost) {
			if w := durationOf((float64(cost) - have) / s.lim.TokenRate); w > r.wait {
				r = refusal{wait: w, reason: "tokens"}
			}
		}
	}
	if r.reason == "" && s.lim.MaxInFlight > 0 && s.inFlight >= s.lim.MaxInFlight {
		r = refusal{reason: "concurrency"}
	}
	return r, r.reason == ""
}

// take counts an admitted request against every limit.
func (s *limitSet) take(now time.Time, cost int) {
	if s.lim.Rate > 0 {
		s.req.AllowN(now, 1)
	}
	if s.win.size > 0 {
		s.win.take(now)
	}
	if s.tok != nil {
		s.tok.AllowN(now, cost)
	}
	s.inFlight++
}

// quotas describes the request and token limits at now, for the headers.
// The request limit is the token bucket if there is one, else the window.
func (s *limitSet) quotas(now time.Time) (req, tok quota) {
	switch {
	case s.lim.Rate > 0:
		req = bucketQuota(s.lim.Burst, s.req.TokensAt(now), s.lim.Rate)
	case s.win.size > 0:
		req = s.win.quota(now, s.lim.Quota)
	}
	if s.tok != nil {
		tok = bucketQuota(s.lim.TokenBurst, s.tok.TokensAt(now), s.lim.TokenRate)
	}
	return req, tok
}

// durationOf converts seconds to a Duration, rounded up to the nanosecond so
// that waiting exactly that long is enough.
func durationOf(s float64) time.Duration {
	if s <= 0 {
		return 0
	}
	if s >= math.MaxInt64/1e9 {
		return math.MaxInt64
	}
	return time.Duration(math.Ceil(s * 1e9))
}
