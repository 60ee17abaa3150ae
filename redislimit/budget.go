package redislimit

import (
	"context"
	"math"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/pacehttp/pacehttp"
)

// budget is one partition's account in Redis, with an in-process twin that
// takes over under FailOpen. It is a pacehttp.Watcher.
//
// The twin runs at this process's share of the limits in force: the
// limits Redis last reported over the processes it counted live, so that a
// fleet failing open keeps to the limit as a whole. While Redis is out of
// reach, the limits the pacer sets reach the twin alone, weighed as the
// script weighs them (headers, then stated, then learned); none of it is
// written to Redis afterwards.
type budget struct {
	l    *Limiter
	name string
	keys []string // the hash, the live set, the counts and the shares (script.go)
	twin pacehttp.Budget

	// horizon is the instant (unix ns, the callers' clock) of the latest
	// reservation Redis granted: where a bucket lost in Redis restarts
	// from. The twin's reservations do not count: they may wait behind a
	// gate only this process knows of.
	horizon atomic.Int64
	made    atomic.Int64 // unix ns at which that reservation was granted
	// resumed counts the times this budget told Redis of an outage's end
	// (twice each, see callWith); primed, the outages begun whose start it
	// told the twin.
	resumed atomic.Uint64
	primed  atomic.Uint64

	slots slots // reservations given back that Redis could not take back

	// The latest refusal in the fleet (see shares.go): when it was sent,
	// unix ns on this process's clock, and on Redis's, as the script
	// reported it.
	refusal atomic.Int64
	rsent   atomic.Uint64 // float64 bits

	mu        sync.Mutex
	stated    [2]bucket // per bucket (requests, tokens); a zero rate: none
	headers   [2]bucket // rates as sent: -1 for no limit, 0 unknown
	headersAt time.Time
	// learned is this process's share of the learned limits, as the
	// pacer last set it while Redis answered; every call carries it (see
	// shares.go).
	learned [2]bucket
	// degraded is the estimate the pacer made while Redis was out of
	// reach: the twin's alone, never written to Redis.
	degraded [2]bucket
	shared   [2]bucket // the limits in force, as Redis last reported
	// learnedInForce: the request limits in force are the sum of the
	// processes' learned shares.
	learnedInForce bool
	live           int       // processes live, as Redis last reported
	twinAt         [2]bucket // what the twin was last given
	holdEnd        time.Time // when the waiters are woken next, see wakeAt
}

// call runs op with the common arguments and the operation's own, unless
// Redis is resting after a failure. A context that ended on the caller's
// side is returned as such, not taken for an outage.
func (b *budget) call(ctx context.Context, now time.Time, op string, opArgs ...any) (reply, error) {
	return b.callWith(ctx, now, op, nil, opArgs...)
}

// callWith is call carrying share, when not nil, as this process's share of
// the learned limits instead of the one kept; kept once Redis has it.
func (b *budget) callWith(ctx context.Context, now time.Time, op string, share *[2]bucket, opArgs ...any) (reply, error) {
	l := b.l
	if !l.health.mayTry(time.Now()) {
		return reply{}, errResting
	}
	// Redis is told twice of each outage's end: when it answers again, and
	// when the grace ends (see Reserve), each time emptying the bucket of
	// what built up while part of the fleet did not count in it.
	resume := 2 * l.health.outages.Load()
	if l.health.recovering(time.Now(), l.retryAfter+l.timeout) {
		resume--
	}
	args := b.args(now, op, resume != b.resumed.Load(), share)
	args = append(args, opArgs...)
	cctx, cancel := context.WithTimeout(ctx, l.timeout)
	defer cancel()
	cctx, c := l.newCall(cctx, b.name)
	start := time.Now()
	v, err := l.eval(cctx, b.keys, args)
	end := time.Now()
	var r reply
	if err == nil {
		r, err = parseReply(v)
	}
	err = c.explain(err, l.timeout)
	l.emit(pacehttp.Event{Kind: pacehttp.EventStoreCall, Reason: op, Wait: end.Sub(start), Err: err, Partition: b.name})
	if err != nil {
		if ctx.Err() != nil {
			l.health.release()
			return reply{}, ctx.Err()
		}
		l.fail(end, b.name, err)
		return reply{}, err
	}
	l.recovered(end, b.name)
	b.resumed.Store(resume)
	if share != nil {
		b.mu.Lock()
		b.learned = *share
		b.mu.Unlock()
	}
	b.slots.sync(r.gen)
	b.observe(now, r)
	if op != "refused" {
		b.heard(r)
	}
	return r, nil
}

// eval runs the script. A client that may not honour the deadline runs it
// in a goroutine, so that the caller is released at the deadline anyway.
func (l *Limiter) eval(ctx context.Context, keys []string, args []any) (any, error) {
	if !l.guard {
		return script.Run(ctx, l.client, keys, args...).Result()
	}
	type result struct {
		v   any
		err error
	}
	done := make(chan result, 1)
	go func() {
		v, err := script.Run(ctx, l.client, keys, args...).Result()
		done <- result{v, err}
	}()
	select {
	case r := <-done:
		return r.v, r.err
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

func (b *budget) args(now time.Time, op string, resume bool, share *[2]bucket) []any {
	l := b.l
	ahead := time.Duration(b.horizon.Load() - now.UnixNano())
	if b.horizon.Load() == 0 {
		ahead = -time.Hour
	}
	ahead = min(max(ahead, -time.Hour), maxAhead)
	b.mu.Lock()
	st, sh := b.stated, b.learned
	b.mu.Unlock()
	if share != nil {
		sh = *share
	}
	var made time.Duration // 0 without a reservation: nothing outstanding
	if m := b.made.Load(); m != 0 {
		made = min(max(time.Duration(now.UnixNano()-m), 0), time.Hour)
	}
	return []any{op, l.ttl.Milliseconds(), l.channel(), l.origin,
		liveWindow.Seconds(), headerTrust.Seconds(), ahead.Seconds(), boolArg(resume),
		fmtRate(st[0].rate), st[0].burst, fmtRate(st[1].rate), st[1].burst,
		countSlot.Seconds(), countSlots, made.Seconds(),
		fmtRate(sh[0].rate), sh[0].burst, fmtRate(sh[1].rate), sh[1].burst}
}

func boolArg(b bool) int {
	if b {
		return 1
	}
	return 0
}

func fmtRate(r float64) string { return strconv.FormatFloat(r, 'g', -1, 64) }

// extend records a reservation granted for t.
func (b *budget) extend(t time.Time) {
	n := t.UnixNano()
	for {
		h := b.horizon.Load()
		if n <= h {
			return
		}
		if b.horizon.CompareAndSwap(h, n) {
			b.made.Store(time.Now().UnixNano())
			return
		}
	}
}

// observe keeps the twin at this process's share of the limits in force.
// Back from an outage, while other processes may still fail open, the
// twin keeps the share it had: a Redis that restarted counts only the
// processes back already.
func (b *budget) observe(now time.Time, r reply) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.learnedInForce = len(r.sources) > 0 && r.sources[0] == 'l'
	if b.l.health.recovering(time.Now(), b.l.retryAfter+b.l.timeout) {
		b.live = max(b.live, r.live)
		return
	}
	b.shared, b.live = r.limits, max(r.live, 1)
	share := b.shared
	for i := range share {
		share[i] = part(share[i], b.live)
	}
	b.setTwin(now, share, [2]int64{-1, -1})
}

// part returns a bucket's share for one of n processes.
func part(bk bucket, n int) bucket {
	if bk.rate <= 0 {
		return bk
	}
	return bucket{rate: bk.rate / float64(n), burst: max(bk.burst/n, 1)}
}

// setTwin gives the twin limits, if they differ from what it has, and
// remaining counts (-1: unknown). b.mu must be held.
func (b *budget) setTwin(now time.Time, lim [2]bucket, remaining [2]int64) {
	if lim == b.twinAt && remaining == [2]int64{-1, -1} {
		return
	}
	var pl pacehttp.Limits
	bls := [2]*pacehttp.BucketLimits{&pl.Requests, &pl.Tokens}
	for i, bl := range bls {
		bl.Remaining = remaining[i]
		if lim[i] == b.twinAt[i] {
			continue
		}
		bl.Rate, bl.Burst = lim[i].rate, lim[i].burst
		if lim[i].rate <= 0 {
			bl.Rate = math.Inf(1)
		}
	}
	b.twinAt = lim
	b.twin.SetLimits(context.Background(), now, pl)
}

// Changed implements pacehttp.Watcher.
func (b *budget) Changed() <-chan struct{} { return b.l.changed(b.keys[0]) }

// Reserve implements pacehttp.Budget.
//
// Failing open, the twin reserves as of the end of the failed call, not as
// of now, which a call that waited for its timeout left behind; the wait
// returned runs from then, when the caller starts it.
//
// For a while after an outage (grace) the twin must agree too: the other
// processes probe Redis at their own pace and some still fail open, each at
// its share, so this one keeps to its share as well until all are back.
// Redis then grants the slot where the twin allows it, so that its schedule
// is the one the fleet keeps when the grace ends.
func (b *budget) Reserve(ctx context.Context, now time.Time, requests, tokens int) (time.Duration, func(), error) {
	recovering := b.l.health.recovering(time.Now(), b.l.retryAfter+b.l.timeout)
	if b.l.health.up() && !recovering {
		if sl, ok := b.slots.take(now, requests, tokens, b.l.announced(b.keys[0])); ok {
			return sl.at.Sub(now), func() { b.cancel(sl) }, nil
		}
	}
	var after time.Duration
	var twinCancel func()
	if recovering {
		w, c, err := b.twin.Reserve(ctx, now, requests, tokens)
		if err == nil {
			after, twinCancel = w, c
		}
	}
	start := time.Now()
	args := []any{requests, tokens, after.Seconds()}
	for _, sl := range b.slots.unused() {
		args = append(args, sl.requests, sl.at.Sub(now).Seconds())
	}
	r, err := b.call(ctx, now, "reserve", args...)
	late := time.Since(start)
	if err == nil {
		wait := time.Duration(r.result) * time.Microsecond
		at := now.Add(wait)
		b.extend(at)
		var cancel func()
		if wait > 0 {
			sl := slot{at: at, requests: requests, tokens: tokens, gen: r.gen}
			cancel = func() { b.cancel(sl) }
		}
		if wait > 0 && r.sources == "nn" {
			b.wakeAt(wait)
		}
		return max(wait, after), both(cancel, twinCancel), nil
	}
	if twinCancel != nil {
		twinCancel() // reserved again below, as of the failure
	}
	if ctx.Err() != nil {
		return 0, nil, ctx.Err()
	}
	if b.l.mode == FailClosed {
		b.l.emit(pacehttp.Event{Kind: pacehttp.EventStoreRefused, Err: err, Partition: b.name})
		return 0, nil, &UnavailableError{Partition: b.name, Err: err}
	}
	b.prime(now.Add(late))
	wait, cancel, err := b.twin.Reserve(ctx, now.Add(late), requests, tokens)
	return wait, cancel, err
}

// wakeAt wakes this process's waiters in d, once for all the holds that
// end then. A hold granted while no limit is known (the fleet's warm-up,
// or a gate closed before any answer stated the limits) ends when the
// limits come, which another process announces; a process that missed the
// announcement (its subscription was not up yet) would otherwise send at
// the end of the hold without reserving again, unpaced.
func (b *budget) wakeAt(d time.Duration) {
	b.mu.Lock()
	defer b.mu.Unlock()
	now := time.Now()
	at := now.Add(d)
	if b.holdEnd.After(now) && !b.holdEnd.Before(at) {
		return
	}
	b.holdEnd = at
	time.AfterFunc(max(d-time.Millisecond, 0), func() { b.l.wake(b.keys[0] + " local 0") })
}

func both(a, b func()) func() {
	switch {
	case a == nil:
		return b
	case b == nil:
		return a
	}
	return func() { a(); b() }
}

// prime readies the twin to take over, once per outage: its bucket starts
// empty, and owes what the reservations this process holds in Redis will
// send until the latest of them, so that the fleet does not send those and
// the twins' bursts besides.
func (b *budget) prime(now time.Time) {
	began := b.l.health.began.Load()
	if b.primed.Swap(began) == began {
		return
	}
	b.mu.Lock()
	lim := b.twinAt[0]
	b.mu.Unlock()
	if lim.rate <= 0 {
		return
	}
	owed := max(lim.burst, 1)
	if h := time.Unix(0, b.horizon.Load()); h.After(now) {
		owed += int(math.Ceil(h.Sub(now).Seconds() * lim.rate))
	}
	for range min(owed, 10*max(lim.burst, 1)) {
		b.twin.Reserve(context.Background(), now, 1, 0) // never given back
	}
}

// cancel gives back the units of a reservation, unless a change voided it
// since: to Redis if it can take them back (the reservation is the last),
// else to the slots this process keeps. Best effort: a lost give-back only
// makes the fleet slower.
func (b *budget) cancel(sl slot) {
	now := time.Now()
	if !sl.at.After(now) {
		return
	}
	r, err := b.call(context.Background(), now, "cancel", sl.requests, sl.tokens, sl.gen, sl.at.Sub(now).Seconds())
	if err == nil && r.result == 0 {
		b.slots.keep(sl)
	}
}

// CoolDown implements pacehttp.Budget.
func (b *budget) CoolDown(ctx context.Context, now, until time.Time) error {
	b.twin.CoolDown(ctx, now, until)
	d := until.Sub(now)
	if d <= 0 {
		return nil
	}
	_, err := b.call(ctx, now, "cooldown", d.Seconds())
	return b.failed(ctx, err)
}

// SetLimits implements pacehttp.Budget. Stated limits and this process's
// share of the learned ones are kept here and sent with every call;
// headers are written to Redis, which weighs them all (see script.go).
func (b *budget) SetLimits(ctx context.Context, now time.Time, lim pacehttp.Limits) error {
	in := [2]pacehttp.BucketLimits{lim.Requests, lim.Tokens}
	b.mu.Lock()
	var src string
	var sent [2]bucket
	switch lim.Source {
	case pacehttp.LimitsStated:
		for i, bl := range in {
			if r := encodeRate(bl.Rate); r > 0 {
				b.stated[i] = bucket{rate: r, burst: max(bl.Burst, 1)}
			}
		}
	case pacehttp.LimitsFromHeaders:
		src = "h"
		b.headers = merge(b.headers, in)
		b.headersAt = now
		sent = b.headers
	default:
		sent = merge(b.learned, in)
	}
	b.mu.Unlock()
	learned := lim.Source == pacehttp.LimitsLearned

	start := time.Now()
	var err error
	switch {
	case learned:
		_, err = b.callWith(ctx, now, "sync", &sent)
	case src == "":
		_, err = b.call(ctx, now, "sync")
	default:
		args := []any{src}
		for i, bl := range in {
			args = append(args, fmtRate(sent[i].rate), sent[i].burst, max(bl.Remaining, -1))
		}
		_, err = b.call(ctx, now, "limits", args...)
	}
	if learned {
		b.mu.Lock()
		if err == nil {
			b.degraded = [2]bucket{}
		} else {
			b.degraded = merge(b.degraded, in)
		}
		b.mu.Unlock()
	}
	if err != nil && ctx.Err() == nil {
		b.degrade(now.Add(time.Since(start)), in)
	}
	return b.failed(ctx, err)
}

// merge returns the limits last set by a source, updated with in, which
// leaves a zero rate or burst as it was.
func merge(last [2]bucket, in [2]pacehttp.BucketLimits) [2]bucket {
	for i, bl := range in {
		if r := encodeRate(bl.Rate); r != 0 {
			last[i].rate = r
		}
		if bl.Burst > 0 {
			last[i].burst = bl.Burst
		}
	}
	return last
}

// encodeRate returns a rate as the script takes it: -1 for no limit, 0 to
// keep the rate as it is.
func encodeRate(r float64) float64 {
	switch {
	case math.IsInf(r, 1):
		return -1
	case r < 0 || math.IsNaN(r):
		return 0
	}
	return r
}

// degrade applies limits the pacer set while Redis was out of reach to the
// twin alone, weighed as the script weighs them. Limits that hold for the
// whole fleet (the server's headers, a stated rate) are shared among the
// processes last counted live; an estimate, the pacer's measure of what
// this process got through, applies as it is.
func (b *budget) degrade(now time.Time, in [2]pacehttp.BucketLimits) {
	b.mu.Lock()
	defer b.mu.Unlock()
	n := max(b.live, 1)
	fresh := !b.headersAt.IsZero() && now.Sub(b.headersAt) < headerTrust
	var lim [2]bucket
	remaining := [2]int64{-1, -1}
	for i := range lim {
		switch {
		case fresh && b.headers[i].rate != 0:
			lim[i] = part(decode(b.headers[i], b.shared[i]), n)
			if in[i].Remaining >= 0 {
				remaining[i] = in[i].Remaining / int64(n)
			}
		case b.stated[i].rate > 0:
			lim[i] = part(b.stated[i], n)
		case b.degraded[i].rate != 0:
			lim[i] = decode(b.degraded[i], b.shared[i])
		default:
			lim[i] = b.twinAt[i]
		}
	}
	b.setTwin(now, lim, remaining)
}

// decode turns limits as sent to the script back into a bucket, taking an
// unknown burst from the limits last in force.
func decode(s, prev bucket) bucket {
	if s.rate < 0 {
		return bucket{}
	}
	if s.burst <= 0 {
		s.burst = max(prev.burst, 1)
	}
	return s
}

// failed turns a Redis error of a change the twin already made into what
// the fail mode asks for.
func (b *budget) failed(ctx context.Context, err error) error {
	if err == nil || b.l.mode == FailOpen && ctx.Err() == nil {
		return nil
	}
	if ctx.Err() != nil {
		return ctx.Err()
	}
	return &UnavailableError{Partition: b.name, Err: err}
}
