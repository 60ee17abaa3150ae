package pacehttp

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"hash/maphash"
	"math"
	"sync"
	"sync/atomic"
	"time"
)

// A partition is the pacing state of one limit: the requests of one host and
// credential (see partitionKey), or of one key of WithKeyFunc.
//
// Requests leave in arrival order. The first in line, the head, is the only
// one that waits on a clock: for the gate, for room under the in-flight
// limit, then for its reservation in the budget; the others wait for their
// turn, each on a channel of its own. So the budget holds at most one
// outstanding reservation, the head's, and a request that gives up, wherever
// it stands, leaves no debt behind: the head hands its reservation back
// whole, the others had none.
//
// What the partition knows of the server it learns from answers: the
// learner (adaptive.go) infers a rate and an in-flight limit from refusals,
// headers state limits outright (learn.go), the gate (gate.go) holds
// everyone after a refusal until a probe gets through, and the window model
// (window.go) tells a quota per period from a bucket and lets requests out
// as the quota returns.
//
// Locks and mirrors:
//   - mu guards everything declared after it. The budget has a lock of its
//     own, or lives in a remote store, and is called without mu held.
//   - sentRate mirrors the request rate last given to the budget, so that
//     the head updates it only when the learner's rate has moved.
//   - tokens mirrors whether the budget has a token bucket, so that costs
//     are computed only then; it is read without mu on every request.
//   - active and lastUsed belong to the partition table (partitions.mu); a
//     partition with active requests, or response bodies still holding a
//     slot, is never evicted.
type partition struct {
	name    string // hashed, safe to log and to hand to a Limiter
	budget  Budget
	watcher Watcher   // budget as a Watcher, if others change it too
	setUp   sync.Once // gives the budget the caller's limits, once
	// tokensStated: the caller stated the token rate (WithTokenRate), so
	// a wait for tokens is as certain as one for a stated request rate.
	tokensStated bool

	active   atomic.Int32
	lastUsed int64 // unix nanoseconds
	tokens   atomic.Bool
	// inputOnly: the token budget counts the prompt only (Anthropic's
	// input-token limit), so a request's max_tokens is not part of its cost.
	inputOnly atomic.Bool
	reported  atomic.Uint64 // float64 bits of the rate last reported to hooks

	// wake tells the head to look again: the gate moved, a slot freed. It
	// has room for one signal, so signalling never blocks and a signal sent
	// while nobody waits wakes the next head once, harmlessly.
	wake chan struct{}

	mu        sync.Mutex
	head      bool      // a request holds the head of the line
	waitingOn waitKind  // what the head sleeps on, so that only news of it wakes it
	queue     []*waiter // the others, in arrival order
	inFlight  int       // sent and not yet answered, or body open when tracked
	// The send burst now under way (see sendSpread): when its first
	// request left (unix nanoseconds), how many it has, the most out during
	// it, and how many were out before it that the server still held; the
	// same for the burst before it. And the burst whose successes are being
	// counted, with their count so far.
	burstFrom, prevBurstFrom     int64
	countingFrom                 int64
	burstBase, prevBurstBase     int32
	burstPeak                    int32
	burstCount, countedSuccesses int16 // saturated
	slots                        int   // the caller's in-flight cap (WithConcurrency); 0 for none
	learn                        learner
	gate                         gate
	quotaWindow                  quotaWindow
	// coldRTT is the shortest a request of the cold start took to be
	// served: the round trip its sends are spread over (coldSpacing).
	coldRTT    time.Duration
	sentRate   float64   // the request rate last given to the budget
	sentRateAt time.Time // when it was given
	sentBurst  int
	overloads  int // overloaded answers in a row
	// The requests and tokens that have left, counted modulo 2^32: a
	// server's Remaining is what was left when it admitted one request,
	// and those that left after it spend from it too. Of them, joined*
	// count those that left in a burst under way and that the budget
	// counted (see countSent).
	sentRequests, sentTokens     uint32
	joinedRequests, joinedTokens uint32
	// retries is the retry budget of its requests, made on first use
	// (under mu); read without mu once made.
	retries atomic.Pointer[retryBudget]

	// What headers said: the bounds on the refill rates they imply, and
	// the share of their limit this client takes.
	hdr          [2]rateBounds
	share        float64
	shareChanged time.Time
}

// A waitKind is what the head of a partition's line waits for.
type waitKind uint8

const (
	waitNothing waitKind = iota
	waitGate             // the gate to open, or its probe's answer
	waitRoom             // room under the in-flight limit
	waitBudget           // its reservation in the budget
)

// A waiter is a request in line behind the head.
type waiter struct {
	ready    chan struct{} // closed when it becomes the head
	promoted bool          // it is the head now; set under mu
}

// sendSpread is how close together requests leave to form one burst.
// Requests on separate connections, or handled by separate server threads,
// reach the server in any order when they leave this close: the last to
// leave may be served first, the first refused. So the in-flight level of a
// burst's requests is the burst's, not the order they left in: a refusal
// counts every request of its burst, and the k-th success of a burst counts
// k and those out before the burst.
//
// Over a network the requests out before a burst are often not at the
// server any more: a burst leaves as their answers come in, and the answers
// heard during it left the server before the burst arrived. The burst's
// base is therefore the fewest out before any of its requests left, less
// its own: in a closed loop at a concurrency cap of 8, the 8 answers of one
// round and the 16 sends of the next interleave at one instant, and the
// server saw 16 at once, not 8 plus 16.
const sendSpread = time.Millisecond

// sent records that a request left at now, part.inFlight counting it, and
// returns its burst: when the burst's first request left, and how many were
// out before it, as far as is known yet.
func (part *partition) sent(now time.Time) (burstFrom int64, burstBase int32) {
	level := int32(min(part.inFlight, math.MaxInt32))
	if ns := now.UnixNano(); ns-part.burstFrom > int64(sendSpread) {
		part.prevBurstFrom, part.prevBurstBase = part.burstFrom, part.burstBase
		part.burstFrom, part.burstBase, part.burstCount, part.burstPeak = ns, level-1, 0, 0
	}
	part.burstCount = min(part.burstCount+1, math.MaxInt16)
	part.burstBase = max(min(part.burstBase, level-int32(part.burstCount)), 0)
	part.burstPeak = max(part.burstPeak, level)
	return part.burstFrom, part.burstBase
}

// countSent counts a request that left as t, costing tokens, after
// part.sent.
//
// One that left in a burst under way may reach the server before those
// ahead of it in the burst (see sendSpread): their answers' Remaining may
// count it already. If the budget counted it too when it left, it is
// joined, and the sync to their Remaining does not subtract it again
// (applyQuotas): subtracted twice, it lowered the budget for good, since
// Remaining never raises a bucket. The answer the server gave last in the
// burst counts the whole burst. A budget with no rate yet did not count
// the request, and still subtracts it. mu must be held.
func (part *partition) countSent(t *ticket, tokens int) {
	part.sentRequests++
	part.sentTokens += uint32(tokens)
	if part.burstCount > 1 {
		if !math.IsInf(part.sentRate, 1) {
			part.joinedRequests++
		}
		part.joinedTokens += uint32(tokens) // costed only with a token budget
	}
	t.sentRequests, t.sentTokens = part.sentRequests, part.sentTokens
	t.joinedRequests, t.joinedTokens = part.joinedRequests, part.joinedTokens
}

// refusalLevel is how many requests a refusal of t says were out when the
// server turned it down: all those of its burst, which may have reached the
// server first. Once a later burst has begun, that of t is forgotten and
// its own count stands.
func (part *partition) refusalLevel(t ticket) int {
	if t.burstFrom == part.burstFrom {
		return max(int(t.inFlight), int(part.burstPeak))
	}
	return int(t.inFlight)
}

// successLevel is how many requests a success of t says the server took
// together: those out before its burst that the server still held, and the
// successes of its burst so far, this one included. The successes of one
// burst are counted while they come back together.
func (part *partition) successLevel(t ticket) int {
	if t.burstFrom == part.countingFrom {
		part.countedSuccesses = min(part.countedSuccesses+1, math.MaxInt16)
	} else {
		part.countingFrom, part.countedSuccesses = t.burstFrom, 1
	}
	base := t.burstBase
	switch t.burstFrom {
	case part.burstFrom:
		base = part.burstBase
	case part.prevBurstFrom:
		base = part.prevBurstBase
	}
	return int(base) + int(part.countedSuccesses)
}

// signal wakes the head, if it waits, to look again.
func (part *partition) signal() {
	select {
	case part.wake <- struct{}{}:
	default:
	}
}

// passHead hands the head of the line to the next waiter, if any. mu must
// be held by the head.
func (part *partition) passHead() {
	if len(part.queue) == 0 {
		part.head = false
		return
	}
	w := part.queue[0]
	part.queue[0] = nil
	part.queue = part.queue[1:]
	w.promoted = true
	close(w.ready)
}

// leave removes w from the line after its caller gave up. mu must be held.
func (part *partition) leave(w *waiter) {
	if w.promoted {
		part.passHead() // the turn came as the caller gave up: pass it on
		return
	}
	for i, q := range part.queue {
		if q == w {
			part.queue = append(part.queue[:i], part.queue[i+1:]...)
			return
		}
	}
}

// retryBudget returns the partition's retry budget (see WithRetryBudget),
// or nil when retries are not budgeted: one failing server must not spend
// the retries of another.
func (part *partition) retryBudget(c *config) *retryBudget {
	if c.budgetRatio < 0 {
		return nil
	}
	if b := part.retries.Load(); b != nil {
		return b
	}
	part.mu.Lock()
	defer part.mu.Unlock()
	if part.retries.Load() == nil {
		part.retries.Store(newRetryBudget(c.budgetRatio, c.budgetFloor))
	}
	return part.retries.Load()
}

// window returns the in-flight limit in force: the caller's and the
// learner's, whichever is lower; 0 for none.
func (part *partition) window() int {
	w := part.learn.window
	if part.slots > 0 && (w == 0 || part.slots < w) {
		w = part.slots
	}
	return w
}

// tracksBodies reports whether a request sent now holds its in-flight slot
// until its response body is closed, rather than until its headers arrive:
// when a concurrency limit is in force, since the server counts a request
// until it has answered in full (a stream, or a body padded while it
// queues). Otherwise the slot is released with the headers, which costs no
// allocation.
func (part *partition) tracksBodies() bool { return part.slots > 0 || part.learn.capped }

// rateUpdate returns the request limits to give the budget at now, if the
// learner's rate has moved enough since the last time to be worth a call
// (for a remote budget, a round trip). mu must be held.
func (part *partition) rateUpdate(now time.Time) (Limits, bool) {
	if part.learn.trusted(now) {
		return Limits{}, false // headers set the budget's limits themselves
	}
	r := part.learn.rate(now)
	if part.quotaWindow.replaying() {
		r = math.Inf(1) // the window holds requests back, not a rate
	}
	if math.IsInf(r, 1) && math.IsInf(part.sentRate, 1) {
		return Limits{}, false // unlimited, and the budget knows it
	}
	b := headroom(int(min(max(part.learn.sendBurst(now, r), 1), math.MaxInt32)))
	if !math.IsInf(r, 1) && (r == part.sentRate && b == part.sentBurst ||
		near(r, part.sentRate, 0.01) && b == part.sentBurst && now.Sub(part.sentRateAt) < 100*time.Millisecond) {
		return Limits{}, false
	}
	part.sentRate, part.sentRateAt, part.sentBurst = r, now, b
	src := LimitsLearned
	if part.learn.phase == fixed && r == part.learn.stated {
		src = LimitsStated
	}
	return Limits{Requests: BucketLimits{Rate: r, Burst: b, Remaining: -1}, Tokens: BucketLimits{Remaining: -1}, Source: src}, true
}

// partitions maps a fast keyed hash of the raw key to its partition. The
// raw key (which may hold a credential) is never stored; the hash's seed is
// random per process.
//
// A partition unused for idle is dropped by a timer that runs while the
// table holds any, so that a burst of keys seen once does not stay in
// memory waiting for traffic that never comes. The table holds at most max
// partitions: a new one then takes the place of the one unused for longest.
// A partition with a request inside it (or a response body still holding
// one of its slots) is never dropped; when every one has, the new partition
// is added beyond max.
type partitions struct {
	mu      sync.Mutex
	m       map[uint64]*partition
	seed    maphash.Seed
	noModel uint64 // the hash of an empty model name under seed
	secret  [32]byte
	idle    time.Duration
	max     int
	sweeper *time.Timer // armed while m is not empty
}

// newPartitions returns an empty set of partitions whose names are hashed
// under secret, or under a random secret when secret is empty.
func newPartitions(idle time.Duration, max int, secret []byte) *partitions {
	ps := &partitions{m: make(map[uint64]*partition), seed: maphash.MakeSeed(), idle: idle, max: max}
	ps.noModel = modelName{}.hash(ps.seed)
	if len(secret) > 0 {
		ps.secret = sha256.Sum256(secret)
	} else {
		rand.Read(ps.secret[:])
	}
	return ps
}

// name returns the printable partition name: the host, a truncated
// HMAC-SHA256 of the credential under the per-process secret, and the
// model, which is no secret.
func (ps *partitions) name(host, cred, model string) string {
	n := host
	if cred != "" {
		m := hmac.New(sha256.New, ps.secret[:])
		m.Write([]byte(host))
		m.Write([]byte{0})
		m.Write([]byte(cred))
		sum := hex.EncodeToString(m.Sum(nil)[:8])
		if n == "" {
			n = sum
		} else {
			n += "#" + sum
		}
	}
	if model != "" {
		n += "/" + model
	}
	return n
}

// get returns the partition of (host, cred, model), creating it with
// create, and counts the caller as active in it until the caller lowers
// active again. Idle partitions are swept now and then, under the same lock.
func (ps *partitions) get(host, cred string, model modelName, now time.Time, create func(name string) *partition) *partition {
	// A hash of the parts' hashes: one call per part, no buffer to fill.
	m := ps.noModel
	if len(model.path) > 0 || len(model.body) > 0 {
		m = model.hash(ps.seed)
	}
	k := maphash.Comparable(ps.seed, [3]uint64{maphash.String(ps.seed, host), maphash.String(ps.seed, cred), m})
	n := now.UnixNano()

	ps.mu.Lock()
	defer ps.mu.Unlock()
	p := ps.m[k]
	if p == nil {
		if ps.max > 0 && len(ps.m) >= ps.max {
			ps.evictOldest()
		}
		p = create(ps.name(host, cred, model.String()))
		ps.m[k] = p
		if ps.sweeper == nil && ps.idle > 0 {
			ps.sweeper = time.AfterFunc(ps.sweepInterval(), ps.sweep)
		}
	}
	p.lastUsed = n
	p.active.Add(1)
	return p
}

// minSweepInterval keeps a tiny expiry from sweeping the table without
// pause: a partition is dropped at most this much after it expires.
const minSweepInterval = time.Second

// sweepInterval is how often idle partitions are looked for: half the
// expiry, so that one is dropped at most half its expiry late, and never
// more often than minSweepInterval.
func (ps *partitions) sweepInterval() time.Duration { return max(ps.idle/2, minSweepInterval) }

// sweep drops the partitions unused for ps.idle, and runs again after
// sweepInterval while any remain.
func (ps *partitions) sweep() {
	ps.mu.Lock()
	defer ps.mu.Unlock()
	now := time.Now().UnixNano()
	for k, p := range ps.m {
		if p.active.Load() == 0 && now-p.lastUsed > int64(ps.idle) {
			delete(ps.m, k)
		}
	}
	if len(ps.m) == 0 {
		ps.sweeper = nil
		return
	}
	ps.sweeper.Reset(ps.sweepInterval())
}

// evictOldest drops the partition unused for longest among those with no
// request inside. mu must be held.
func (ps *partitions) evictOldest() {
	var oldest uint64
	found := false
	for k, p := range ps.m {
		if p.active.Load() == 0 && (!found || p.lastUsed < ps.m[oldest].lastUsed) {
			oldest, found = k, true
		}
	}
	if found {
		delete(ps.m, oldest)
	}
}

func (ps *partitions) len() int {
	ps.mu.Lock()
	defer ps.mu.Unlock()
	return len(ps.m)
}
