package pacehttp

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"hash/maphash"
	"net/http"
	"sync"
	"sync/atomic"
	"time"
)

// credentialHeaders are the request headers whose value identifies the
// caller's quota, in the order they are consulted.
var credentialHeaders = [...]string{"Authorization", "X-Api-Key", "Api-Key", "X-Goog-Api-Key"}

// A partition is the pacing state of one (host, credential) pair, or of one
// key of a WithKeyFunc.
type partition struct {
	name   string // hashed, safe to log and to hand to a Limiter
	budget Budget
	sem    *semaphore // nil without WithConcurrency
	// watcher is budget as a Watcher, if it is one: others change it too.
	watcher Watcher

	stated Limits // what the caller stated, given to the budget in setUp
	setUp  sync.Once

	active   atomic.Int32 // requests inside RoundTrip; raised under partitions.mu
	lastUsed int64        // unix nanoseconds; guarded by partitions.mu

	// warm-up: the first request of a fresh partition goes alone, so that
	// its answer's headers set the pace of the rest.
	warm     atomic.Bool
	probe    atomic.Bool // a first request is out
	warmOnce sync.Once
	warmed   chan struct{}

	reported atomic.Uint64 // float64 bits of the rate last reported to hooks

	tokens  atomic.Bool // a token budget is active: compute costs
	limited atomic.Bool // the estimator has a finite rate and wants ticks

	// changed is closed, and replaced, when the budget's rate or gate
	// changes, to wake the waiters so that they reserve again.
	changed atomic.Pointer[chan struct{}]

	mu         sync.Mutex
	est        estimator
	lastSet    float64       // the request rate last given to the budget
	lastTokSet float64       // the token rate last given to the budget
	gate       time.Time     // the latest end of a cool-down given to the budget
	hdr        [2]rateBounds // the refill rate headers imply: requests, tokens

	share        float64   // part of a header-stated limit taken, in (0, 1]
	shareChanged time.Time // when share last changed
	headersSince time.Time // when headers were first trusted, this time
}

// partitions maps a fast keyed hash of the raw key to its partition. The
// raw key (which may hold a credential) is never stored; the hash's seed is
// random per process.
type partitions struct {
	mu        sync.Mutex
	m         map[uint64]*partition
	seed      maphash.Seed
	secret    [32]byte
	idle      time.Duration
	lastSweep int64
}

// newPartitions returns an empty set of partitions whose names are hashed
// under secret, or under a random secret when secret is empty.
func newPartitions(idle time.Duration, secret []byte) *partitions {
	ps := &partitions{m: make(map[uint64]*partition), seed: maphash.MakeSeed(), idle: idle}
	if len(secret) > 0 {
		ps.secret = sha256.Sum256(secret)
	} else {
		rand.Read(ps.secret[:])
	}
	return ps
}

// partitionKey returns the raw parts of req's partition key: the host and
// the first credential header present (or the key of keyFunc).
func partitionKey(req *http.Request, keyFunc func(*http.Request) string) (host, cred string) {
	if keyFunc != nil {
		return "", keyFunc(req)
	}
	host = req.URL.Host
	if host == "" {
		host = req.Host
	}
	for _, h := range credentialHeaders {
		if v := req.Header[h]; len(v) > 0 && v[0] != "" {
			return host, v[0]
		}
	}
	return host, ""
}

// name returns the printable partition name: the host and a truncated
// HMAC-SHA256 of the credential under the per-process secret.
func (ps *partitions) name(host, cred string) string {
	if cred == "" {
		return host
	}
	m := hmac.New(sha256.New, ps.secret[:])
	m.Write([]byte(host))
	m.Write([]byte{0})
	m.Write([]byte(cred))
	sum := hex.EncodeToString(m.Sum(nil)[:8])
	if host == "" {
		return sum
	}
	return host + "#" + sum
}

// get returns the partition of (host, cred), creating it with create, and
// counts the caller as active in it until the caller calls done. Idle
// partitions are swept now and then, under the same lock.
func (ps *partitions) get(host, cred string, now time.Time, create func(name string) *partition) *partition {
	var h maphash.Hash
	h.SetSeed(ps.seed)
	h.WriteString(host)
	h.WriteByte(0)
	h.WriteString(cred)
	k := h.Sum64()
	n := now.UnixNano()

	ps.mu.Lock()
	defer ps.mu.Unlock()
	if ps.idle > 0 && n-ps.lastSweep >= int64(ps.idle/2) {
		ps.sweep(n)
	}
	p := ps.m[k]
	if p == nil {
		p = create(ps.name(host, cred))
		ps.m[k] = p
	}
	p.lastUsed = n
	p.active.Add(1)
	return p
}

func (ps *partitions) sweep(now int64) {
	ps.lastSweep = now
	for k, p := range ps.m {
		if p.active.Load() == 0 && now-p.lastUsed > int64(ps.idle) {
			delete(ps.m, k)
		}
	}
}

func (ps *partitions) len() int {
	ps.mu.Lock()
	defer ps.mu.Unlock()
	return len(ps.m)
}

// signal wakes the partition's waiters to reserve again.
func (part *partition) signal() {
	ch := make(chan struct{})
	close(*part.changed.Swap(&ch))
}
