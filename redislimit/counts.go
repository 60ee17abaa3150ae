package redislimit

import (
	"context"
	"fmt"
	"time"
)

// A Counter is a budget that counts, in Redis, what every process sharing
// it sends: Redis can then tell the fleet's delivery rate, which no single
// process sees. The budgets of a Limiter implement it.
//
// The script counts each reservation it grants at the instant it grants it
// for, less those given back, per tenth of a second, over the last minute.
// A process that has a request refused reports it with Refused, by the
// instant it was sent; Counts reads both series. The accepted rate of the
// fleet between two throttles is then sent minus refused over the slots
// between them, whichever process met the throttles. The pacers report
// their refusals themselves (see pacehttp.FleetBudget).
type Counter interface {
	// Refused records that a request sent at sent was refused.
	Refused(ctx context.Context, now, sent time.Time) error
	// Counts returns the fleet's sends and refusals from from to to, a
	// minute at most; sends are counted ahead, at the instants they were
	// granted for.
	Counts(ctx context.Context, now, from, to time.Time) (Counts, error)
}

// Counts are what a fleet sent through one partition, and had refused, per
// slot of time.
type Counts struct {
	Start   time.Time     // the start of the first slot, on the caller's clock
	Slot    time.Duration // the length of a slot
	Sent    []int         // requests sent per slot, oldest first
	Refused []int         // of which refused
}

// Between returns the requests sent and refused in the slots that start in
// [from, to).
func (c Counts) Between(from, to time.Time) (sent, refused int) {
	for i := range c.Sent {
		at := c.Start.Add(time.Duration(i) * c.Slot)
		if !at.Before(from) && at.Before(to) {
			sent += c.Sent[i]
			refused += c.Refused[i]
		}
	}
	return sent, refused
}

// Counts implements Counter.
func (b *budget) Counts(ctx context.Context, now, from, to time.Time) (Counts, error) {
	if !b.l.health.mayTry(time.Now()) {
		return Counts{}, errResting
	}
	cctx, cancel := context.WithTimeout(ctx, b.l.timeout)
	defer cancel()
	cctx, c := b.l.newCall(cctx, b.name)
	args := append(b.args(now, "counts", false, nil), from.Sub(now).Seconds(), to.Sub(now).Seconds())
	v, err := b.l.eval(cctx, b.keys, args)
	if err != nil {
		err = c.explain(err, b.l.timeout)
		if ctx.Err() == nil {
			b.l.fail(time.Now(), b.name, err)
		} else {
			b.l.health.release()
		}
		return Counts{}, err
	}
	b.l.recovered(time.Now(), b.name)
	s, ok := v.([]any)
	if !ok || len(s) < 3 || len(s)%2 == 0 {
		return Counts{}, fmt.Errorf("redislimit: unexpected counts %v", v)
	}
	ints := make([]int64, len(s))
	for i, x := range s {
		n, ok := x.(int64)
		if !ok {
			return Counts{}, fmt.Errorf("redislimit: unexpected counts %v", v)
		}
		ints[i] = n
	}
	redisNow := time.UnixMicro(ints[0])
	slot := time.Duration(ints[1]) * time.Microsecond
	first := time.UnixMicro(ints[2] * ints[1])
	out := Counts{Start: now.Add(first.Sub(redisNow)), Slot: slot}
	for i := 3; i < len(ints); i += 2 {
		out.Sent = append(out.Sent, int(ints[i]))
		out.Refused = append(out.Refused, int(ints[i+1]))
	}
	return out, nil
}
