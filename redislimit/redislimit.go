// Package redislimit keeps the budgets of pacehttp's pacer in Redis, so that
// a fleet of processes calling one API with one credential shares a single
// budget, a single cool-down and a single set of limits.
package redislimit

import (
	"context"
	"crypto/rand"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/pacehttp/pacehttp"
	"github.com/redis/go-redis/v9"
)

// A Limiter is a pacehttp.Limiter whose budgets live in Redis, one set of
// keys per partition under the key prefix, all with the partition name as
// their hash tag (prefix + "{" + partition + "}"), so that every script
// touches one Redis Cluster slot. The partition name is the pacer's hashed
// name, so no credential reaches Redis; processes must share
// pacehttp.WithPartitionSecret for their names to match.
//
// Every operation is one atomic Lua script (see script.go): reservations
// draw from generic cell rate (GCRA) buckets for requests and tokens, a
// cool-down closes a gate every process honours, and the limits in force
// are chosen on every call from what each source said: the server's
// rate-limit headers while they are fresh, else the caller's stated rate,
// which every call carries (so state lost in Redis is restored, not
// forgotten), else the sum of the pacers' estimates of their shares, which
// never overrides a stated limit.
//
// When Redis is out of reach (an error, or no answer within WithTimeout),
// the Limiter fails open or closed (WithFailMode) and leaves Redis alone
// for WithRetryAfter, then probes it with one call. Failing open, each
// process paces on its own at its share of the fleet's limit: the limit
// divided by the processes that used the partition recently, a count the
// script keeps in Redis. What a process does meanwhile is never written
// back to Redis.
//
// The budgets are pacehttp.FleetBudgets: a fleet that learns a limit no
// header states learns it together (see shares.go). They also count what
// the fleet sends (see Counter).
//
// Most callers need only New and pacehttp.WithLimiter:
//
//	lim := redislimit.New(client)
//	defer lim.Close()
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
	fleetSize  int // processes assumed live until Redis counts them
	hook       func(pacehttp.Event)
	local      pacehttp.Limiter
	watch      bool
	guard      bool   // the client may not honour deadlines: bound calls ourselves
	origin     string // this Limiter's id among the fleet's processes

	health   health
	lastDial atomic.Pointer[dialFailure]

	// Changes made by other processes arrive on a Redis channel; the
	// budgets' waiters are woken through a Go channel per key, closed at
	// the next change and then dropped.
	stop       context.CancelFunc // ends the listener; nil without one
	listening  chan struct{}      // closed when the listener has ended
	subscribed chan struct{}      // closed at the first subscription
	closeOnce  sync.Once
	psMu       sync.Mutex
	ps         *redis.PubSub // the listener's current subscription
	closed     bool
	mu         sync.Mutex
	waiters    map[string]chan struct{}
	gens       map[string]int64 // the latest generation announced, by key
	refusals   map[string]int64 // the latest refusal announced, by key (see shares.go)
}

// New returns a Limiter that keeps its budgets in Redis through client, a
// *redis.Client, *redis.ClusterClient, *redis.Ring or any other Scripter.
// New does no I/O: it returns at once, whether Redis answers or not.
//
// Give the client ContextTimeoutEnabled (see WithTimeout). A client whose
// options do not say so has each call run in a goroutine of its own, left
// behind after the timeout until the client's own timeouts end it.
//
// When client can also Subscribe (a *redis.Client can), the Limiter
// listens in the background on the channel prefix+"changes" for the
// cool-downs and new limits other processes set, and wakes its waiters so
// that they reserve again; Close stops it.
//
// New adds a hook to the client (when it takes hooks, as go-redis's
// clients do) that records the client's failed dials, so that a call that
// fails because the connection was refused says so: go-redis dials in the
// background and returns only the caller's deadline.
//
// The first New of a process routes go-redis's own log messages (through
// redis.SetLogger): those logged during a Limiter's calls, or that name the
// address of a Limiter's client, reach that Limiter's hook as
// EventStoreLog (even after Close: the client may still be dialing); the others are written to standard
// error, as go-redis does by default. A program that sets its own go-redis
// logger should do so after New.
func New(client redis.Scripter, opts ...Option) *Limiter {
	l := &Limiter{
		client:     client,
		prefix:     DefaultPrefix,
		timeout:    DefaultTimeout,
		retryAfter: DefaultRetryAfter,
		ttl:        DefaultTTL,
		fleetSize:  1,
		hook:       defaultHook,
		local:      pacehttp.NewLocalLimiter(),
		watch:      true,
		origin:     rand.Text(),
		waiters:    make(map[string]chan struct{}),
		gens:       make(map[string]int64),
		refusals:   make(map[string]int64),
		subscribed: make(chan struct{}),
	}
	for _, o := range opts {
		if o != nil {
			o(l)
		}
	}
	l.guard = !honoursDeadlines(client)
	routeRedisLogs()
	l.watchDials()
	if s, ok := client.(subscriber); ok && l.watch {
		ctx, stop := context.WithCancel(context.Background())
		l.stop = stop
		l.listening = make(chan struct{})
		go l.listen(ctx, s)
	}
	return l
}

// honoursDeadlines reports whether client's options say that it cuts a
// call short at its context's deadline.
func honoursDeadlines(client redis.Scripter) bool {
	switch c := client.(type) {
	case *redis.Client:
		return c.Options().ContextTimeoutEnabled
	case *redis.ClusterClient:
		return c.Options().ContextTimeoutEnabled
	case *redis.Ring:
		return c.Options().ContextTimeoutEnabled
	}
	return false
}

// Close stops listening for other processes' changes, within the timeout
// (WithTimeout) when the client honours deadlines. The budgets remain
// usable. Close is idempotent.
func (l *Limiter) Close() error {
	l.closeOnce.Do(func() {
		if l.stop == nil {
			return
		}
		l.stop()
		l.psMu.Lock()
		ps := l.ps
		l.closed = true
		l.psMu.Unlock()
		if ps != nil {
			ps.Close()
		}
		t := time.NewTimer(l.timeout)
		defer t.Stop()
		select {
		case <-l.listening:
		case <-t.C: // a client that ignores deadlines; it ends on its own
		}
	})
	return nil
}

// Budget implements pacehttp.Limiter.
func (l *Limiter) Budget(name string) pacehttp.Budget {
	tag := tagEscaper.Replace(name)
	if tag == "" {
		tag = "%" // an empty tag would hash each whole key apart
	}
	key := l.prefix + "{" + tag + "}"
	return &budget{
		l:    l,
		name: name,
		keys: []string{key, key + ":live", key + ":counts", key + ":shares"},
		twin: l.local.Budget(name),
		live: l.fleetSize,
	}
}

// tagEscaper keeps braces out of a partition name, so that the braces
// around it delimit the hash tag.
var tagEscaper = strings.NewReplacer("%", "%25", "{", "%7B", "}", "%7D")

func (l *Limiter) channel() string {
	if l.stop == nil {
		return ""
	}
	return l.prefix + "changes"
}
