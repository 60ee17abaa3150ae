package pacehttp

import (
	"context"
	"math"
	"sync"
	"time"

	"golang.org/x/time/rate"
)

// A Limiter holds the budgets that paced requests draw from, one per
// partition. The pacer decides how much each partition may spend (it learns
// rates from headers and throttling); the Limiter keeps the account. The
// default keeps it in process memory; an implementation backed by a shared
// store (Redis, say) makes a whole fleet of processes share one budget and
// one cool-down. Install one with WithLimiter.
type Limiter interface {
	// Budget returns the budget of the partition with the given key. The
	// key is the hashed partition name, safe to store; it never holds a
	// raw credential. The pacer calls Budget once per partition and keeps
	// the result until the partition expires.
	Budget(key string) Budget
}

// A Budget is the account of one partition: two token buckets, one counted
// in requests and one in tokens (units of an API's usage such as LLM
// tokens), and a gate that a cool-down closes. A Budget must be safe for
// concurrent use.
//
// Times are passed in, as in golang.org/x/time/rate, so that an
// implementation is testable without a clock.
type Budget interface {
	// Reserve takes requests and tokens from the buckets as of now and
	// returns how long the caller must wait before sending. If the caller
	// does not send after all, it calls cancel (when non-nil) to give the
	// units back. A closed gate adds its remaining time to the wait.
	Reserve(ctx context.Context, now time.Time, requests, tokens int) (wait time.Duration, cancel func(), err error)

	// CoolDown closes the gate until until: no reservation is granted
	// before then. A gate that is already closed longer stays as it is.
	CoolDown(ctx context.Context, now, until time.Time) error

	// SetLimits sets the refill rates and bursts of the buckets and lowers
	// what is left in them to what the server reported.
	//
	// A change of rate or burst, like a CoolDown, voids the reservations
	// outstanding: the pacer wakes their holders, which reserve again
	// under the new terms. Their cancel funcs may then give back nothing,
	// or units of the old terms: either is safe.
	SetLimits(ctx context.Context, now time.Time, l Limits) error
}

// A Watcher is a Budget that others change too, such as one kept in a store
// shared by a fleet of processes. Changed returns a channel that is closed
// at the next change made elsewhere (a cool-down, new limits); the pacer's
// waiters then give their reservations back and reserve again, as they do
// after a change made in their own process.
type Watcher interface {
	Changed() <-chan struct{}
}

// Limits describe a Budget's buckets: each refills at Rate units per second
// up to Burst. A zero field leaves the setting unchanged. Source says whose
// word they are, so that a Budget shared by several processes can weigh
// them: a limit the caller configured is never overwritten by an estimate.
type Limits struct {
	Requests BucketLimits
	Tokens   BucketLimits
	Source   LimitSource
}

// A LimitSource says where a Limits come from.
type LimitSource uint8

const (
	// LimitsLearned: the pacer's estimate, inferred from throttling. It is
	// one process's view of a limit that other clients may share.
	LimitsLearned LimitSource = iota
	// LimitsStated: the caller's configuration (WithRate, WithTokenRate),
	// the same in every process that shares it.
	LimitsStated
	// LimitsFromHeaders: the server's own rate-limit headers.
	LimitsFromHeaders
)

// BucketLimits describe one token bucket. Rate is units per second
// (math.Inf(1) for no limit), Burst the bucket's size, and Remaining, when
// zero or more, what the server says is left: a bucket holding more than
// Remaining+1 (servers round down) is lowered to it, never raised. A negative Remaining means unknown.
type BucketLimits struct {
	Rate      float64
	Burst     int
	Remaining int64
}

// NewLocalLimiter returns the default Limiter: budgets in process memory,
// built on golang.org/x/time/rate. It is useful to wrap, or as the fallback
// of a shared Limiter.
func NewLocalLimiter() Limiter { return localLimiter{} }

// localLimiter is the default Limiter.
type localLimiter struct{}

func (localLimiter) Budget(string) Budget { return newLocalBudget() }

// localBudget keeps the gate as a time, and consults the buckets as of the
// moment the gate opens, so that the buckets never see time go backwards
// across a gate. The pacer reserves for one request at a time per partition
// (the head of its line), so a reservation handed back is always the latest
// and is returned whole.
type localBudget struct {
	mu       sync.Mutex
	gate     time.Time // closed until then
	gen      int       // bumped when outstanding reservations are void
	drained  time.Time // when a cool-down last said the server had nothing left
	requests *rate.Limiter
	tokens   *rate.Limiter // nil until a token budget is known
	// unlimited mirrors requests.Limit() == rate.Inf, kept as requests
	// changes, so that a request takes nothing from an unlimited bucket
	// without a call into it (and its lock).
	unlimited bool
}

func newLocalBudget() *localBudget {
	return &localBudget{requests: rate.NewLimiter(rate.Inf, 1), unlimited: true}
}

// allowRequests takes n units from the request bucket if it has them at
// now, as requests.AllowN does. b.mu must be held.
func (b *localBudget) allowRequests(now time.Time, n int) bool {
	return b.unlimited || b.requests.AllowN(now, n)
}

func (b *localBudget) at(now time.Time) time.Time {
	if now.Before(b.gate) {
		return b.gate
	}
	return now
}

func (b *localBudget) Reserve(_ context.Context, now time.Time, requests, tokens int) (time.Duration, func(), error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	t := b.at(now)
	tb := b.tokens
	if tokens <= 0 {
		tb = nil
	}
	// The common case: no gate, units on hand. No allocation.
	if !t.After(now) && tb == nil && b.allowRequests(now, requests) {
		return 0, nil, nil
	}
	rr := b.requests.ReserveN(t, min(requests, max(b.requests.Burst(), 1)))
	wait := rr.DelayFrom(now)
	var tr *rate.Reservation
	if tb != nil {
		tr = tb.ReserveN(t, min(tokens, max(tb.Burst(), 1)))
		wait = max(wait, tr.DelayFrom(now))
	}
	if wait == 0 {
		return 0, nil, nil
	}
	gen := b.gen
	cancel := func() {
		b.mu.Lock()
		defer b.mu.Unlock()
		if b.gen != gen {
			return // voided: its debt is gone already
		}
		c := b.at(time.Now())
		rr.CancelAt(c)
		if tr != nil {
			tr.CancelAt(c)
		}
	}
	return wait, cancel, nil
}

// take takes the units if they are on hand at now, with the gate open and
// no token bucket to draw from, and reports whether it did. Unlike Reserve
// it never leaves a reservation behind, so that the pacer may try it with
// its partition's lock held (it never blocks) and fall back to Reserve.
func (b *localBudget) take(now time.Time, requests, tokens int) bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	return !now.Before(b.gate) && (tokens <= 0 || b.tokens == nil) && b.allowRequests(now, requests)
}

func (b *localBudget) CoolDown(_ context.Context, now, until time.Time) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	// Drain the buckets as of now: the server just said it has nothing
	// left, so only the refill from now on counts.
	b.requests = renew(b.requests, now) // its limit unchanged
	b.tokens = renew(b.tokens, now)
	b.gen++
	b.drained = now
	if until.After(b.gate) {
		b.gate = until
	}
	return nil
}

// renew returns a bucket like l, empty at t, that has forgotten its debts to
// outstanding reservations, which are void.
func renew(l *rate.Limiter, t time.Time) *rate.Limiter {
	if l == nil || l.Limit() == rate.Inf {
		return l
	}
	n := rate.NewLimiter(l.Limit(), l.Burst())
	n.AllowN(t, n.Burst())
	return n
}

func (b *localBudget) SetLimits(_ context.Context, now time.Time, l Limits) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	t := b.at(now)
	b.requests = setBucket(b.requests, t, l.Requests, b.drained)
	b.unlimited = b.requests.Limit() == rate.Inf
	if b.tokens == nil && l.Tokens.Rate > 0 {
		b.tokens = rate.NewLimiter(rate.Inf, 1)
	}
	b.tokens = setBucket(b.tokens, t, l.Tokens, b.drained)
	return nil
}

// near reports whether a and b differ by less than the fraction frac of the
// larger. Infinities are near only each other.
func near(a, b, frac float64) bool {
	if math.IsInf(a, 1) || math.IsInf(b, 1) {
		return a == b
	}
	return math.Abs(a-b) < frac*max(a, b)
}

// setBucket applies bl to lim and returns the bucket to use from now on: a
// fresh one when an unlimited bucket gets a rate (an unlimited rate.Limiter
// keeps no count worth carrying over), full unless the server said it was
// empty at drained, in which case it holds what has refilled since.
func setBucket(lim *rate.Limiter, t time.Time, bl BucketLimits, drained time.Time) *rate.Limiter {
	if lim == nil {
		return nil
	}
	if lim.Limit() == rate.Inf {
		if bl.Rate <= 0 || math.IsInf(bl.Rate, 1) {
			if bl.Burst > 0 {
				lim.SetBurstAt(t, bl.Burst)
			}
			return lim
		}
		burst := bl.Burst
		if burst <= 0 {
			burst = max(lim.Burst(), 1)
		}
		lim = rate.NewLimiter(rate.Limit(bl.Rate), burst)
		if drained.IsZero() || drained.After(t) {
			lim.AllowN(t, 0) // anchor the bucket's clock at t
		} else {
			lim.AllowN(drained, burst)
		}
	} else {
		if bl.Burst > 0 && bl.Burst != lim.Burst() {
			lim.SetBurstAt(t, bl.Burst)
		}
		if math.IsInf(bl.Rate, 1) {
			lim.SetLimitAt(t, rate.Inf)
			return lim
		}
		if bl.Rate > 0 && rate.Limit(bl.Rate) != lim.Limit() {
			lim.SetLimitAt(t, rate.Limit(bl.Rate))
		}
	}
	if bl.Remaining >= 0 {
		// Servers round Remaining down: one that shows R may hold up to
		// R+1, so only a bucket above that is out of step.
		if n := int(math.Ceil(lim.TokensAt(t) - float64(bl.Remaining) - 1)); n > 0 {
			lim.AllowN(t, n)
		}
	}
	return lim
}
