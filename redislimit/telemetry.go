package redislimit

import (
	"context"
	"errors"
	"fmt"
	"log"
	"log/slog"
	"maps"
	"net"
	"os"
	"slices"
	"strings"
	"sync"
	"time"
	"weak"

	"github.com/pacehttp/pacehttp"
	"github.com/redis/go-redis/v9"
)

func (l *Limiter) emit(e pacehttp.Event) {
	if l.hook != nil {
		l.hook(e)
	}
}

// defaultHook logs that Redis went away and came back, once each time.
func defaultHook(e pacehttp.Event) {
	switch e.Kind {
	case pacehttp.EventStoreDown, pacehttp.EventStoreUp:
		pacehttp.LogHook(slog.Default())(e)
	}
}

// A call is one call of a Limiter to Redis. go-redis logs some failures
// instead of returning them; a message logged in the call's context (the
// subscription's calls, say) reaches the Limiter's hook and explains the
// error the call returns.
type call struct {
	l         *Limiter
	partition string
	start     time.Time

	mu     sync.Mutex
	logged string // the last message logged during the call
}

type callKey struct{}

func (l *Limiter) newCall(ctx context.Context, partition string) (context.Context, *call) {
	c := &call{l: l, partition: partition, start: time.Now()}
	return context.WithValue(ctx, callKey{}, c), c
}

func (c *call) log(msg string) {
	c.mu.Lock()
	c.logged = msg
	c.mu.Unlock()
	c.l.logged(msg, c.partition)
}

// explain returns err as the caller should read it: the reason a dial
// failed during the call (a refused connection, say) rather than the
// deadline the call then ran into, and a timeout as such.
func (c *call) explain(err error, timeout time.Duration) error {
	if err == nil {
		return nil
	}
	c.mu.Lock()
	logged := c.logged
	c.mu.Unlock()
	if logged != "" {
		return &explainedError{msg: logged, err: err}
	}
	if !errors.Is(err, context.DeadlineExceeded) {
		return err
	}
	if d := c.l.lastDial.Load(); d != nil && !d.at.Before(c.start) {
		return &explainedError{msg: d.err.Error(), err: err}
	}
	return &timeoutError{timeout: timeout, err: err}
}

// An explainedError is a failed call whose cause the client logged, or
// met in a dial of its own, instead of returning it.
type explainedError struct {
	msg string
	err error
}

func (e *explainedError) Error() string { return e.msg }
func (e *explainedError) Unwrap() error { return e.err }

// A timeoutError is a call that got no answer in time.
type timeoutError struct {
	timeout time.Duration
	err     error
}

func (e *timeoutError) Error() string {
	return fmt.Sprintf("no answer from redis within %v", e.timeout)
}
func (e *timeoutError) Unwrap() error { return e.err }

// A dialFailure is the last dial of the Limiter's client that failed.
type dialFailure struct {
	err error
	at  time.Time
}

// dialWatch is a go-redis hook that records the client's failed dials. The
// client dials in a goroutine of its own, detached from the call that
// needs the connection, which gets only its own deadline as an error.
type dialWatch struct{ l *Limiter }

func (w dialWatch) DialHook(next redis.DialHook) redis.DialHook {
	return func(ctx context.Context, network, addr string) (net.Conn, error) {
		c, err := next(ctx, network, addr)
		if err != nil {
			w.l.lastDial.Store(&dialFailure{err: err, at: time.Now()})
		}
		return c, err
	}
}

func (dialWatch) ProcessHook(next redis.ProcessHook) redis.ProcessHook { return next }

func (dialWatch) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return next
}

// watchDials installs a dialWatch on the client, if it takes hooks, and
// registers the addresses it serves for the routing of go-redis's messages.
func (l *Limiter) watchDials() {
	if h, ok := l.client.(interface{ AddHook(redis.Hook) }); ok {
		h.AddHook(dialWatch{l})
	}
	var addrs []string
	switch c := l.client.(type) {
	case *redis.Client:
		addrs = []string{c.Options().Addr}
	case *redis.ClusterClient:
		addrs = c.Options().Addrs
	case *redis.Ring:
		addrs = slices.Collect(maps.Values(c.Options().Addrs))
	}
	if len(addrs) == 0 {
		return
	}
	registry.Lock()
	defer registry.Unlock()
	registry.addrs[weak.Make(l)] = addrs
}

// registry holds the addresses of the Limiters' clients. A Limiter stays in
// it after Close, since its client may still be dialing, until it is
// garbage.
var registry = struct {
	sync.Mutex
	addrs map[weak.Pointer[Limiter]][]string
}{addrs: make(map[weak.Pointer[Limiter]][]string)}

// owner returns the Limiter whose client's address msg names, if any.
func owner(msg string) *Limiter {
	registry.Lock()
	defer registry.Unlock()
	for p, addrs := range registry.addrs {
		l := p.Value()
		if l == nil {
			delete(registry.addrs, p)
			continue
		}
		for _, a := range addrs {
			if a != "" && strings.Contains(msg, a) {
				return l
			}
		}
	}
	return nil
}

func (l *Limiter) logged(msg, partition string) {
	l.emit(pacehttp.Event{Kind: pacehttp.EventStoreLog, Err: errors.New(msg), Partition: partition})
}

// redisLogger is the go-redis logger redislimit installs. A message logged
// during a Limiter's call, or naming the address of a Limiter's client,
// goes to that Limiter's hook; any other is written to standard error, as
// by go-redis's default logger.
type redisLogger struct{ std *log.Logger }

func (lg redisLogger) Printf(ctx context.Context, format string, v ...any) {
	msg := fmt.Sprintf(format, v...)
	if ctx != nil {
		if c, ok := ctx.Value(callKey{}).(*call); ok {
			c.log(msg)
			return
		}
	}
	if l := owner(msg); l != nil {
		l.logged(msg, "")
		return
	}
	lg.std.Output(2, msg)
}

var routeOnce sync.Once

func routeRedisLogs() {
	routeOnce.Do(func() {
		redis.SetLogger(redisLogger{std: log.New(os.Stderr, "redis: ", log.LstdFlags|log.Lshortfile)})
	})
}
