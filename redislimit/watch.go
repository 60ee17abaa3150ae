package redislimit

import (
	"context"
	"errors"
	"net"
	"strconv"
	"strings"
	"time"

	"github.com/pacehttp/pacehttp"
	"github.com/redis/go-redis/v9"
)

type subscriber interface {
	Subscribe(ctx context.Context, channels ...string) *redis.PubSub
}

// Keep-alive of the subscription: a ping when nothing came for pingAfter,
// and a new connection when nothing, not even the pong, came for
// silentAfter.
const (
	pingAfter   = 15 * time.Second
	silentAfter = 2 * pingAfter
)

// listen keeps a subscription to the channel of changes until ctx ends,
// and wakes the waiters of each key another process announces. Every
// blocking step is bounded by the timeout, so that Close is too.
func (l *Limiter) listen(ctx context.Context, s subscriber) {
	defer close(l.listening)
	for {
		ps := s.Subscribe(ctx) // no channel yet: no I/O
		l.psMu.Lock()
		if l.closed {
			l.psMu.Unlock()
			ps.Close()
			return
		}
		l.ps = ps
		l.psMu.Unlock()

		err := l.receive(ctx, ps)

		l.psMu.Lock()
		l.ps = nil
		l.psMu.Unlock()
		ps.Close()
		if ctx.Err() != nil {
			return
		}
		l.emit(pacehttp.Event{Kind: pacehttp.EventStoreCall, Reason: "subscribe", Err: err})
		t := time.NewTimer(max(l.retryAfter, l.timeout))
		select {
		case <-t.C:
		case <-ctx.Done():
			t.Stop()
			return
		}
	}
}

// receive subscribes ps and handles what arrives until an error.
func (l *Limiter) receive(ctx context.Context, ps *redis.PubSub) error {
	start := time.Now()
	sctx, cancel := context.WithTimeout(ctx, l.timeout)
	sctx, c := l.newCall(sctx, "")
	err := ps.Subscribe(sctx, l.channel())
	if err == nil {
		_, err = ps.ReceiveTimeout(sctx, l.timeout) // the confirmation
	}
	cancel()
	if err != nil {
		return c.explain(err, l.timeout)
	}
	l.emit(pacehttp.Event{Kind: pacehttp.EventStoreCall, Reason: "subscribe", Wait: time.Since(start)})
	select {
	case <-l.subscribed:
	default:
		close(l.subscribed)
	}

	heard, pinged := time.Now(), time.Time{}
	for {
		rctx, cancel := context.WithTimeout(ctx, l.timeout)
		rctx, c := l.newCall(rctx, "")
		msg, err := ps.ReceiveTimeout(rctx, l.timeout)
		cancel()
		if ctx.Err() != nil {
			return ctx.Err()
		}
		now := time.Now()
		if err != nil {
			if !isTimeout(err) {
				return c.explain(err, l.timeout)
			}
			switch quiet := now.Sub(heard); {
			case quiet > silentAfter:
				return errors.New("subscription silent")
			case quiet > pingAfter && now.Sub(pinged) > pingAfter:
				pinged = now
				pctx, cancel := context.WithTimeout(ctx, l.timeout)
				err := ps.Ping(pctx)
				cancel()
				if err != nil {
					return err
				}
			}
			continue
		}
		heard = now
		if m, ok := msg.(*redis.Message); ok {
			l.wake(m.Payload)
		}
	}
}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout() || errors.Is(err, context.DeadlineExceeded)
}

// wake wakes the waiters of the key an announcement names, unless this
// Limiter made it: the pacer woke its own waiters already.
//
// It also records the generation the change began: the slots kept from
// before it are void (see slots.go). Announcements arrive after the
// change, and a waiter that reserved meanwhile is woken for nothing; its
// slot, kept, is its place again.
//
// An announcement of a refusal says how long ago the refused request was
// sent (see shares.go): the latest refusal of the key, for the pacers.
func (l *Limiter) wake(payload string) {
	key, origin, gen, ago, ok := readAnnouncement(payload)
	if !ok {
		return
	}
	refusal := ago != ""
	heard := time.Now()
	l.mu.Lock()
	defer l.mu.Unlock()
	l.gens[key] = max(l.gens[key], gen)
	if origin == l.origin {
		return
	}
	if refusal {
		if s, err := strconv.ParseFloat(ago, 64); err == nil && s >= 0 && s < maxAhead.Seconds() {
			sent := heard.Add(-time.Duration(s * float64(time.Second))).UnixNano()
			l.refusals[key] = max(l.refusals[key], sent)
		}
	}
	if c := l.waiters[key]; c != nil {
		close(c)
		delete(l.waiters, key)
	}
}

// readAnnouncement splits an announcement, "key origin gen" or, for a
// refusal, "key origin gen ago" (see script.go), with ago "" for none.
// Origins, generations and ages hold no space but keys may (a partition
// named for a model "my model", a prefix of the user's), so the fields are
// read from the right: the last is the generation when it is an integer,
// else the age, which the script writes with a fraction. ok is false for a
// payload of another form.
func readAnnouncement(payload string) (key, origin string, gen int64, ago string, ok bool) {
	rest, last, _ := cutLast(payload)
	if _, err := strconv.ParseInt(last, 10, 64); err != nil {
		ago = last
		rest, last, _ = cutLast(rest)
	}
	gen, err := strconv.ParseInt(last, 10, 64)
	if err != nil {
		return "", "", 0, "", false
	}
	key, origin, found := cutLast(rest)
	if !found || key == "" || origin == "" {
		return "", "", 0, "", false
	}
	return key, origin, gen, ago, true
}

// cutLast cuts s around its last space; found is false without one.
func cutLast(s string) (before, after string, found bool) {
	i := strings.LastIndexByte(s, ' ')
	if i < 0 {
		return "", s, false
	}
	return s[:i], s[i+1:], true
}

// announcedRefusal returns when the latest refusal announced for key was
// sent (unix ns, this process's clock), 0 for none.
func (l *Limiter) announcedRefusal(key string) int64 {
	if l.stop == nil {
		return 0
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.refusals[key]
}

// announced returns the latest generation announced for key.
func (l *Limiter) announced(key string) int64 {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.gens[key]
}

// changed returns the channel closed at the next change of key announced
// by another process; nil (never ready) without a listener.
func (l *Limiter) changed(key string) <-chan struct{} {
	if l.stop == nil {
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
