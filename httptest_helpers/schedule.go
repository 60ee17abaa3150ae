package pacetest

import "time"

// A Change alters the Config's own limits At after the API was created, as
// a vendor lowering a limit under load does. Each field set replaces the
// limit of the same name; a zero field leaves it as it was. Buckets and
// windows keep what they hold. Models' limits do not change.
type Change struct {
	At          time.Duration
	Rate        float64
	Quota       int
	MaxInFlight int
}

// OverloadBursts describe an overloaded server in spells: during the first
// For of every Every, counted from Offset after the API was created, every
// request is answered Status without being served and without using any
// quota. The zero OverloadBursts never overloads.
type OverloadBursts struct {
	Every, For, Offset time.Duration
	// Status is the answer during a burst; zero means 529, Anthropic's
	// "overloaded".
	Status int
	// RetryAfter, if set, announces the end of the burst in the Config's
	// RetryAfter format; otherwise the answer carries no hint.
	RetryAfter bool
}

// remaining reports whether t, an offset from the API's creation, falls in
// a burst, and how long the burst has left.
func (o OverloadBursts) remaining(t time.Duration) (time.Duration, bool) {
	if o.Every <= 0 || o.For <= 0 || t < o.Offset {
		return 0, false
	}
	into := (t - o.Offset) % o.Every
	if into >= o.For {
		return 0, false
	}
	return o.For - into, true
}

func (o OverloadBursts) status() int {
	if o.Status == 0 {
		return StatusOverloaded
	}
	return o.Status
}

// StatusOverloaded is the status Anthropic answers when it is overloaded.
const StatusOverloaded = 529
