// Package redislimit keeps the budgets of pacehttp's pacer in Redis, so that
// a fleet of processes calling one API with one credential shares a single
// budget, a single cool-down and a single learned rate.
package redislimit

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/pacehttp/pacehttp"
	"github.com/redis/go-redis/v9"
)

// Defaults of a Limiter. Each has an Option that overrides it.
const (
	// DefaultPrefix starts every key the Limiter writes.
	DefaultPrefix = "pacehttp:"

	// DefaultTimeout bounds every call to Redis. A reservation that
	// cannot be made in that time is handled as Redis being down.
	DefaultTimeout = 100 * time.Millisecond

	// DefaultRetryAfter is how long the Limiter leaves Redis alone after
	// a failure before trying it again; meanwhile it fails open or closed
	// at once, without a round trip.
	DefaultRetryAfter = time.Second

	// DefaultTTL is how long an unused partition's state stays in Redis,
	// the pacer's partition expiry.
	DefaultTTL = pacehttp.DefaultPartitionExpiry
)

// FailMode says what a Limiter does while Redis is out of reach.
type FailMode int

const (
	// FailOpen paces each process on its own, with in-process budgets
	// that follow the same limits and cool-downs, until Redis answers
	// again. The fleet as a whole may then send up to once per process
	// the limit; the server's 429s and the retry layer bound the damage.
	FailOpen FailMode = iota
	// FailClosed refuses to send: the request fails with an
	// *UnavailableError.
	FailClosed
)

// An UnavailableError reports a reservation refused because Redis was out
// of reach or too slow, under FailClosed. It reaches the caller of the
// RoundTripper wrapped, so errors.As(err, new(*UnavailableError)) works.
type UnavailableError struct {
	Partition string // the hashed partition name
	Err       error  // the Redis error, or a note that Redis is left alone
}

// Error names the partition whose budget Redis could not serve, and why.
func (e *UnavailableError) Error() string {
	return fmt.Sprintf("redislimit: redis unavailable for partition %s: %v", e.Partition, e.Err)
}

// Unwrap returns the underlying Redis or network error.
func (e *UnavailableError) Unwrap() error { return e.Err }

// errResting is the cause of an UnavailableError returned without trying
// Redis, during the pause after a failure.
var errResting = errors.New("not retried until the pause after the last failure ends")

// A Limiter is a pacehttp.Limiter whose budgets live in Redis, one hash per
// partition under the key prefix + partition name. The partition name is
// the pacer's hashed name, so no credential reaches Redis; processes must
// share pacehttp.WithPartitionSecret for their names to match.
//
// Every operation is one atomic Lua script: reservations draw from
// generic cell rate (GCRA) buckets for requests and tokens, a cool-down
// closes a gate every process honours, and SetLimits writes the rates the
// pacer learns, so the fleet paces at the last rate any process set.
//
// Most callers need only New and pacehttp.WithLimiter:
//
//	lim := redislimit.New(client)
//	rt := pacehttp.New(nil, pacehttp.WithLimiter(lim), pacehttp.WithPartitionSecret(secret))
//
// A Limiter is safe for concurrent use.
type Limiter struct {
	client     redis.Scripter
	prefix     string
	timeout    time.Duration
	retryAfter time.Duration
	ttl        time.Duration
	mode       FailMode
	logger     *slog.Logger
	local      pacehttp.Limiter
	watch      bool

	down atomic.Int64 // unix nanoseconds until which Redis is left alone; 0 when up

	// Changes made by other processes arrive on a Redis channel; the
	// budgets' waiters are woken through a Go channel per key, closed at
	// the next change and then dropped.
	origin  string // this Limiter's id in announcements
	sub     *redis.PubSub
	mu      sync.Mutex
	waiters map[string]chan struct{}
}

// An Option configures a Limiter.
type Option func(*Limiter)

// WithPrefix sets the prefix of every key; the default is DefaultPrefix.
func WithPrefix(p string) Option { return func(l *Limiter) { l.prefix = p } }

// WithTimeout bounds each call to Redis; the default is DefaultTimeout.
// The client must honour context deadlines for the bound to cut a slow
// read short: set ContextTimeoutEnabled in its options (or a ReadTimeout
// no longer than d).
func WithTimeout(d time.Duration) Option {
	return func(l *Limiter) {
		if d > 0 {
			l.timeout = d
		}
	}
}

// WithFailMode chooses what happens while Redis is out of reach; the
// default is FailOpen.
func WithFailMode(m FailMode) Option { return func(l *Limiter) { l.mode = m } }

// WithRetryAfter sets how long Redis is left alone after a failure; the
// default is DefaultRetryAfter.
func WithRetryAfter(d time.Duration) Option {
	return func(l *Limiter) { l.retryAfter = max(d, 0) }
}

// WithTTL sets how long an unused partition's state stays in Redis; the
// default is DefaultTTL.
func WithTTL(d time.Duration) Option {
	return func(l *Limiter) {
		if d > 0 {
			l.ttl = d
		}
	}
}

// WithoutWatch stops the Limiter from subscribing to the changes other
// processes make. Their waiters then keep the places they reserved
// across a cool-down or a new rate set elsewhere, as if those came later.
func WithoutWatch() Option { return func(l *Limiter) { l.watch = false } }

// WithLogger sets where the Limiter reports that Redis went away and came
// back, once each time; the default is slog.Default().
func WithLogger(lg *slog.Logger) Option { return func(l *Limiter) { l.logger = lg } }

// New returns a Limiter that keeps its budgets in Redis through client, a
// *redis.Client, *redis.ClusterClient or any other Scripter. See
// WithTimeout about the client's timeouts.
//
// When client can also Subscribe (a *redis.Client can), the Limiter
// listens on the channel prefix+"changes" for the cool-downs and new limits
// other processes set, and wakes its waiters so that they reserve again;
// Close stops it.
func New(client redis.Scripter, opts ...Option) *Limiter {
	l := &Limiter{
		client:     client,
		prefix:     DefaultPrefix,
		timeout:    DefaultTimeout,
		retryAfter: DefaultRetryAfter,
		ttl:        DefaultTTL,
		logger:     slog.Default(),
		local:      pacehttp.NewLocalLimiter(),
		watch:      true,
		waiters:    make(map[string]chan struct{}),
	}
	for _, o := range opts {
		if o != nil {
			o(l)
		}
	}
	if s, ok := client.(subscriber); ok && l.watch {
		l.origin = rand.Text()
		l.sub = s.Subscribe(context.Background(), l.prefix+"changes")
		go l.listen(l.sub.Channel())
	}
	return l
}

type subscriber interface {
	Subscribe(ctx context.Context, channels ...string) *redis.PubSub
}

// Close stops listening for other processes' changes. The budgets remain
// usable.
func (l *Limiter) Close() error {
	if l.sub == nil {
		return nil
	}
	return l.sub.Close()
}

func (l *Limiter) channel() string {
	if l.sub == nil {
		return ""
	}
	return l.prefix + "changes"
}

// listen wakes the waiters of each key another process announces.
func (l *Limiter) listen(ch <-chan *redis.Message) {
	for m := range ch {
		key, origin, _ := strings.Cut(m.Payload, " ")
		if origin == l.origin {
			continue // our own waiters were woken by the pacer
		}
		l.mu.Lock()
		if c := l.waiters[key]; c != nil {
			close(c)
			delete(l.waiters, key)
		}
		l.mu.Unlock()
	}
}

// changed returns the channel closed at the next change of key announced
// by another process.
func (l *Limiter) changed(key string) <-chan struct{} {
	if l.sub == nil {
		return nil
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	c := l.waiters[key]
	if c == nil {
		c = make(chan struct{})
		l.waiters[key] = c
	}
	return c
}

// Budget implements pacehttp.Limiter.
func (l *Limiter) Budget(key string) pacehttp.Budget {
	return &budget{l: l, name: key, key: l.prefix + key, local: l.local.Budget(key)}
}

// budget is one partition's account in Redis, with an in-process twin that
// receives every limit and cool-down, ready to take over under FailOpen.
// It is a pacehttp.Watcher.
type budget struct {
	l     *Limiter
	name  string
	key   string
	local pacehttp.Budget
}

// run runs the script's operation args[0] with the operation's arguments
// args[1:], unless Redis is resting after a failure. A context that ended
// on the caller's side is reported as such, not as an outage.
func (b *budget) run(ctx context.Context, args ...any) (int64, error) {
	l := b.l
	if until := l.down.Load(); until != 0 && time.Now().UnixNano() < until {
		return 0, errResting
	}
	cctx, cancel := context.WithTimeout(ctx, l.timeout)
	defer cancel()
	args = append([]any{args[0], b.l.ttl.Milliseconds(), l.channel(), l.origin}, args[1:]...)
	n, err := script.Run(cctx, l.client, []string{b.key}, args...).Int64()
	if err != nil {
		if ctx.Err() != nil {
			return 0, ctx.Err()
		}
		if l.down.Swap(time.Now().Add(l.retryAfter).UnixNano()) == 0 {
			l.logger.Warn("redislimit: redis unavailable", "partition", b.name, "fail", l.mode.String(), "err", err)
		}
		return 0, err
	}
	if l.down.Swap(0) != 0 {
		l.logger.Info("redislimit: redis available again", "partition", b.name)
	}
	return n, nil
}

// Changed implements pacehttp.Watcher.
func (b *budget) Changed() <-chan struct{} { return b.l.changed(b.key) }

func (b *budget) Reserve(ctx context.Context, now time.Time, requests, tokens int) (time.Duration, func(), error) {
	n, err := b.run(ctx, "reserve", requests, tokens)
	if err != nil {
		if ctx.Err() != nil {
			return 0, nil, err
		}
		if b.l.mode == FailClosed {
			return 0, nil, &UnavailableError{Partition: b.name, Err: err}
		}
		return b.local.Reserve(ctx, now, requests, tokens)
	}
	wait := time.Duration(n) * time.Microsecond
	if wait <= 0 {
		return 0, nil, nil
	}
	cancel := func() {
		// Best effort: a lost give-back only makes the fleet slower.
		b.run(context.Background(), "cancel", requests, tokens)
	}
	return wait, cancel, nil
}

func (b *budget) CoolDown(ctx context.Context, now, until time.Time) error {
	b.local.CoolDown(ctx, now, until)
	d := until.Sub(now)
	if d <= 0 {
		return nil
	}
	_, err := b.run(ctx, "cooldown", strconv.FormatFloat(d.Seconds(), 'g', -1, 64))
	return b.failed(err)
}

func (b *budget) SetLimits(ctx context.Context, now time.Time, lim pacehttp.Limits) error {
	b.local.SetLimits(ctx, now, lim)
	args := []any{"limits"}
	for _, bl := range []pacehttp.BucketLimits{lim.Requests, lim.Tokens} {
		rate := bl.Rate
		switch {
		case math.IsInf(rate, 1):
			rate = -1
		case rate < 0 || math.IsNaN(rate):
			rate = 0
		}
		args = append(args, strconv.FormatFloat(rate, 'g', -1, 64), max(bl.Burst, 0), max(bl.Remaining, -1))
	}
	_, err := b.run(ctx, args...)
	return b.failed(err)
}

// failed turns a Redis error of a change the local twin already made into
// what the fail mode asks for.
func (b *budget) failed(err error) error {
	if err == nil || b.l.mode == FailOpen {
		return nil
	}
	return &UnavailableError{Partition: b.name, Err: err}
}

// String returns the mode's name, "open" or "closed".
func (m FailMode) String() string {
	if m == FailClosed {
		return "closed"
	}
	return "open"
}
