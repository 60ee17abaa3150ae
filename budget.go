package pacehttp

import (
	"sync"
	"time"

	"golang.org/x/time/rate"
)

// Defaults of the retry budget; see WithRetryBudget.
const (
	DefaultRetryRatio       = 0.2
	DefaultMinRetriesPerSec = 10
)

// A retryBudget bounds the retries made without a server hint to a fraction
// of the requests, plus a small floor per second, as Finagle's and Envoy's
// budgets do: when a service fails outright, its clients then add at most
// that fraction of load instead of multiplying it by the attempt count.
//
// Every request deposits ratio; a retry withdraws one. The balance is
// capped so that a long healthy spell cannot buy an unbounded storm later.
type retryBudget struct {
	ratio float64
	floor *rate.Limiter

	mu      sync.Mutex
	balance float64
}

const maxBudgetBalance = 100

// maxBudgetBurst bounds the floor's burst, so that a huge minPerSecond
// converts to an int on every platform.
const maxBudgetBurst = 1 << 30

// newRetryBudget returns the budget of WithRetryBudget. ratio must not be
// NaN (the option makes it 0); a minPerSec of zero or less, or NaN, means
// no floor.
func newRetryBudget(ratio, minPerSec float64) *retryBudget {
	b := &retryBudget{ratio: ratio}
	if minPerSec > 0 {
		b.floor = rate.NewLimiter(rate.Limit(minPerSec), int(min(max(minPerSec, 1), maxBudgetBurst)))
	}
	return b
}

func (b *retryBudget) deposit() {
	if b.ratio <= 0 {
		return
	}
	b.mu.Lock()
	b.balance = min(b.balance+b.ratio, maxBudgetBalance)
	b.mu.Unlock()
}

// withdraw reports whether one more retry is allowed now.
func (b *retryBudget) withdraw(now time.Time) bool {
	if b.floor != nil && b.floor.AllowN(now, 1) {
		return true
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.balance >= 1 {
		b.balance--
		return true
	}
	return false
}
