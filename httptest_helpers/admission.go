package pacetest

import (
	"math/rand/v2"
	"net/http"
	"slices"
	"time"
)

// admission applies a Config's rules to requests at given times. It is all
// of an API but HTTP: time is passed in, so that the oracle behind
// Scenario.Bound runs the very same rules ahead of real time, and can replay
// a run's answers to rebuild the server's state at any instant. It is not
// safe for concurrent use; API guards it with a mutex.
type admission struct {
	cfg      Config // with defaults filled in
	start    time.Time
	schedule []Change // sorted by At
	// noPenalty is set in the bound's own copy: an ideal client never
	// exceeds a limit, so it never starts a penalty. noRecord keeps no
	// answers and writes no headers, which the bound does not need.
	noPenalty, noRecord bool

	shared     Limits // the Config's own limits now, after SetRate and Schedule
	nextChange int    // the first change of schedule not yet applied
	sets       map[setKey]*limitSet

	overloadRNG, latencyRNG *rand.Rand
	overloads               int
	seq                     int64 // orders decisions and releases, for replays

	inHandler     int
	inFlightKey   map[string]int
	inFlightModel map[string]int
	stats         Stats              // its Keys and Models are filled by snapshot
	keyCounts     map[string]*Counts // by credential, when Config.PerKey
	modelCounts   map[string]*Counts // by model, when Config.Models is set
	answers       []Answer
}

// defaultCost is the cost of a request when Config.Cost is nil.
func defaultCost(_ *http.Request, body []byte) int { return max(1, len(body)/4) }

// setKey names a set of limits: a credential (when Config.PerKey) and a
// model (when Config.Models is not empty).
type setKey struct{ key, model string }

func newAdmission(cfg Config, start time.Time) *admission {
	if cfg.Cost == nil {
		cfg.Cost = defaultCost
	}
	shared := cfg.limits().withDefaults()
	cfg.Burst, cfg.TokenBurst = shared.Burst, shared.TokenBurst
	sched := slices.Clone(cfg.Schedule)
	slices.SortStableFunc(sched, func(a, b Change) int { return int(a.At - b.At) })
	return &admission{
		cfg:           cfg,
		start:         start,
		schedule:      sched,
		shared:        shared,
		sets:          make(map[setKey]*limitSet),
		overloadRNG:   rand.New(rand.NewPCG(cfg.Seed, cfg.Seed)),
		latencyRNG:    rand.New(rand.NewPCG(cfg.Seed, ^cfg.Seed)),
		inFlightKey:   make(map[string]int),
		inFlightModel: make(map[string]int),
		keyCounts:     make(map[string]*Counts),
		modelCounts:   make(map[string]*Counts),
	}
}

// verdict is what the rules decided for one request.
type verdict int

const (
	accept   verdict = iota
	refuse           // 429
	overload         // 503 or 529, or a burst's status
	tooLarge         // 413: costs more than the token bucket holds
)

// decision is a verdict with everything the answer needs, taken at one
// instant so that its parts agree with each other.
type decision struct {
	verdict verdict
	status  int
	reason  string
	// wait is the least time until the request could be admitted, as far
	// as the rules know (zero when they do not: a concurrency refusal).
	wait time.Duration
	// recheck is when the oracle should try again: wait, or sooner if a
	// scheduled change could admit it earlier; zero when unknown.
	recheck time.Duration
	header  http.Header // rate-limit and Retry-After fields of the answer
	service time.Duration
	set     *limitSet
	key     string
	model   string
	answer  int // index in answers, or -1
}

// advance applies the scheduled changes due by now, each at its own time.
func (a *admission) advance(now time.Time) {
	for a.nextChange < len(a.schedule) {
		c := a.schedule[a.nextChange]
		at := a.start.Add(c.At)
		if at.After(now) {
			return
		}
		a.nextChange++
		if c.Rate != 0 {
			a.shared.Rate = c.Rate
		}
		if c.Quota != 0 {
			a.shared.Quota = c.Quota
		}
		if c.MaxInFlight != 0 {
			a.shared.MaxInFlight = c.MaxInFlight
		}
		for _, s := range a.sets {
			if s.shared {
				a.follow(s, at)
			}
		}
	}
}

// follow brings a set that uses the Config's own limits up to them at t.
func (a *admission) follow(s *limitSet, t time.Time) {
	if s.lim.Rate != a.shared.Rate {
		s.setRate(t, a.shared.Rate)
	}
	s.lim.Quota = a.shared.Quota
	s.lim.MaxInFlight = a.shared.MaxInFlight
}

// setRate changes the Config's own request rate at now.
func (a *admission) setRate(now time.Time, r float64) {
	a.advance(now)
	a.shared.Rate = r
	for _, s := range a.sets {
		if s.shared {
			a.follow(s, now)
		}
	}
}

// untilChange is the time from now to the next scheduled change, or -1.
func (a *admission) untilChange(now time.Time) time.Duration {
	if a.nextChange >= len(a.schedule) {
		return -1
	}
	return a.start.Add(a.schedule[a.nextChange].At).Sub(now)
}

func (a *admission) set(key, model string) *limitSet {
	k := setKey{key, model}
	if s := a.sets[k]; s != nil {
		return s
	}
	lim, shared := a.shared, true
	if m, ok := a.cfg.Models[model]; ok && model != "" {
		lim, shared = m.withDefaults(), false
	}
	s := newLimitSet(lim, shared, a.start)
	a.sets[k] = s
	return s
}

// decide answers one request arriving at now. Times must not go backwards.
func (a *admission) decide(now time.Time, key, model string, cost int) decision {
	a.advance(now)
	a.seq++
	s := a.set(key, model)
	d := decision{set: s, key: key, model: model, answer: -1}
	bursts := a.cfg.OverloadBursts
	hint := false // whether the answer announces d.wait

	if left, in := bursts.remaining(now.Sub(a.start)); in {
		d.verdict, d.status, d.reason = overload, bursts.status(), "overload burst"
		if d.status == http.StatusTooManyRequests {
			d.verdict = refuse
		}
		d.wait, d.recheck, hint = left, left, bursts.RetryAfter
	} else if now.Before(s.boxUntil) {
		if a.cfg.PenaltyExtends && !a.noPenalty {
			s.boxUntil = now.Add(a.cfg.Penalty)
		}
		d.verdict, d.status, d.reason = refuse, http.StatusTooManyRequests, "penalty"
		d.wait = s.boxUntil.Sub(now)
		d.recheck, hint = d.wait, true
	} else if s.tok != nil && cost > s.lim.TokenBurst {
		d.verdict, d.status, d.reason = tooLarge, http.StatusRequestEntityTooLarge, "too large"
	} else if r, ok := s.check(now, cost); !ok {
		d.verdict, d.status, d.reason = refuse, http.StatusTooManyRequests, r.reason
		d.wait, hint = r.wait, r.reason != "concurrency"
		d.recheck = r.wait
		if u := a.untilChange(now); u >= 0 && (d.recheck == 0 || u < d.recheck) {
			d.recheck = u // a change may make room sooner
		}
		if r.reason == "concurrency" {
			d.recheck = 0 // room comes when a request ends: unknowable here
		}
		if a.cfg.Penalty > 0 && !a.noPenalty {
			s.boxUntil = now.Add(a.cfg.Penalty)
			d.wait, d.recheck, hint = max(d.wait, a.cfg.Penalty), max(d.wait, a.cfg.Penalty), true
			d.reason = "penalty"
		}
	} else {
		s.take(now, cost)
		if a.cfg.Overload > 0 && a.overloadRNG.Float64() < a.cfg.Overload {
			s.inFlight-- // answered at once, not served
			d.verdict, d.status, d.reason = overload, http.StatusServiceUnavailable, "overload"
			if a.overloads%2 == 1 {
				d.status = StatusOverloaded
			}
			a.overloads++
		} else {
			d.verdict, d.status = accept, http.StatusOK
			d.service = a.cfg.Latency
			if a.cfg.LatencyJitter > 0 {
				d.service += time.Duration(a.latencyRNG.Int64N(int64(a.cfg.LatencyJitter) + 1))
			}
		}
	}

	var announced time.Duration
	if !a.noRecord {
		d.header = make(http.Header)
		// A concurrency refusal carries no hint at all, DeepSeek's way,
		// and an overloaded server says nothing of its limits.
		if !(d.reason == "concurrency" && !hint) && d.reason != "overload burst" {
			req, tok := s.quotas(now)
			writeRateHeaders(d.header, a.cfg.Dialect, now, req, tok)
		}
		if hint {
			announced = a.cfg.RetryAfter.write(d.header, now, d.wait)
		}
	}
	a.count(now, &d, cost, announced)
	return d
}

// release ends an accepted request at now; abandoned means the client went
// away before its answer.
func (a *admission) release(d decision, now time.Time, abandoned bool) {
	a.seq++
	d.set.inFlight--
	a.inFlightKey[d.key]--
	a.inFlightModel[d.model]--
	if d.answer >= 0 {
		an := &a.answers[d.answer]
		an.Done, an.Abandoned, an.doneSeq = now, abandoned, a.seq
	}
}

// count records a decision in the statistics and the answers.
func (a *admission) count(now time.Time, d *decision, cost int, announced time.Duration) {
	st := &a.stats
	st.Requests++
	second := int(now.Sub(a.start) / time.Second)
	var key, model *Counts
	if a.cfg.PerKey {
		key = countsOf(a.keyCounts, d.key)
		key.Requests++
	}
	if len(a.cfg.Models) > 0 {
		model = countsOf(a.modelCounts, d.model)
		model.Requests++
	}
	each := func(f func(c *Counts)) {
		for _, c := range [...]*Counts{key, model} {
			if c != nil {
				f(c)
			}
		}
	}
	switch d.verdict {
	case accept:
		st.Accepted++
		st.Timeline = bump(st.Timeline, second)
		a.inFlightKey[d.key]++
		a.inFlightModel[d.model]++
		st.PeakInFlight = max(st.PeakInFlight, d.set.inFlight)
		each(func(c *Counts) { c.Accepted++ })
		if key != nil {
			key.PeakInFlight = max(key.PeakInFlight, a.inFlightKey[d.key])
		}
		if model != nil {
			model.PeakInFlight = max(model.PeakInFlight, a.inFlightModel[d.model])
		}
	case refuse:
		st.Refused++
		st.RefusedTimeline = bump(st.RefusedTimeline, second)
		each(func(c *Counts) { c.Refused++ })
	case overload:
		st.Overloaded++
		each(func(c *Counts) { c.Overloaded++ })
	case tooLarge:
		st.TooLarge++
	}
	// Keep both timelines the same length, so they line up second by second.
	for len(st.Timeline) <= second {
		st.Timeline = append(st.Timeline, 0)
	}
	for len(st.RefusedTimeline) <= second {
		st.RefusedTimeline = append(st.RefusedTimeline, 0)
	}
	if a.noRecord {
		return
	}
	d.answer = len(a.answers)
	a.answers = append(a.answers, Answer{
		Time: now, Key: d.key, Model: d.model, Cost: cost, Status: d.status,
		RetryAfter: announced, Service: d.service, seq: a.seq,
	})
}

func countsOf(m map[string]*Counts, name string) *Counts {
	c := m[name]
	if c == nil {
		c = new(Counts)
		m[name] = c
	}
	return c
}

// snapshot returns a copy of the statistics that shares nothing with a.
func (a *admission) snapshot() Stats {
	s := a.stats
	s.Timeline = slices.Clone(s.Timeline)
	s.RefusedTimeline = slices.Clone(s.RefusedTimeline)
	s.Keys, s.Models = copyCounts(a.keyCounts), copyCounts(a.modelCounts)
	return s
}

func copyCounts(m map[string]*Counts) map[string]Counts {
	if len(m) == 0 {
		return nil
	}
	c := make(map[string]Counts, len(m))
	for k, v := range m {
		c[k] = *v
	}
	return c
}

func bump(tl []int, i int) []int {
	for len(tl) <= i {
		tl = append(tl, 0)
	}
	tl[i]++
	return tl
}

// errorMessage is the text of a refusal's JSON error body.
func (d decision) errorMessage(announced string) string {
	msg := "rate limit exceeded"
	switch d.reason {
	case "concurrency":
		msg = "too many requests in flight"
	case "penalty":
		msg = "rate limit exceeded: client suspended"
	}
	if announced != "" {
		msg += ", retry after " + announced
	}
	return msg
}
