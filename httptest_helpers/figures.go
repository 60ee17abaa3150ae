package pacetest

import (
	"math"
	"regexp"
	"slices"
	"time"
)

// Result is what a Runner measured of one run. Times are offsets from the
// start of the run (the creation of its server) unless said otherwise.
type Result struct {
	Scenario string `json:"scenario"`
	Requests int    `json:"requests"`
	// Elapsed is from the start to the end of the last request.
	Elapsed time.Duration `json:"elapsed_ns"`
	// Bound is the scenario's physical bound (Scenario.Bound), and Ratio
	// is Elapsed over it: 1.00 is perfect. Ratio is 0 when the bound is 0
	// or Never.
	Bound time.Duration `json:"bound_ns"`
	Ratio float64       `json:"ratio"`
	// Attempts counts the attempts that reached the base transport;
	// Retries those beyond each request's first.
	Attempts int `json:"attempts"`
	Retries  int `json:"retries"`
	// Refused counts the 429s the clients received; RefusedPerRequest is
	// that over Requests.
	Refused           int     `json:"refused"`
	RefusedPerRequest float64 `json:"refused_per_request"`
	// Overloaded counts the 503s and 529s the clients received.
	Overloaded int `json:"overloaded"`
	// Failed counts the requests that did not end in a 2xx, Cut included;
	// BoundFailed those the ideal client could not get through either,
	// because of their deadlines.
	Failed      int `json:"failed"`
	Cut         int `json:"cut"`
	BoundFailed int `json:"bound_failed"`
	// Stop is when the run was to be stopped; Stopped says it was.
	Stop    time.Duration `json:"stop_ns"`
	Stopped bool          `json:"stopped"`

	// FirstRefusal is when a client first received a 429, 503 or 529; -1
	// when none did. From then on the client had something to learn from:
	// RatioAfterRefusal is the time from FirstRefusal to the end over
	// BoundAfterRefusal, the bound of the work left then, from the
	// server's state then. Both are 0 when there was no refusal or no work
	// left after it.
	FirstRefusal      time.Duration `json:"first_refusal_ns"`
	BoundAfterRefusal time.Duration `json:"bound_after_refusal_ns"`
	RatioAfterRefusal float64       `json:"ratio_after_refusal"`

	// P50 and P99 are the latencies of the requests that finished, failed
	// or not, from the call to the end of the body.
	P50 time.Duration `json:"p50_ns"`
	P99 time.Duration `json:"p99_ns"`
	// AddedP50 and AddedP99 are what the client added to the successful
	// requests: the latency less the final attempt's round trip.
	AddedP50 time.Duration `json:"added_p50_ns"`
	AddedP99 time.Duration `json:"added_p99_ns"`

	// MostPerRetryAfter is politeness: after a client first received a
	// refusal, the most attempts it sent for one model within any span as
	// long as the shortest Retry-After the server announced; 0 when the
	// server announced none.
	MostPerRetryAfter int `json:"most_per_retry_after"`

	// AcceptedTimeline[i] and RefusedTimeline[i] count the attempts sent
	// during second i that were answered 2xx and 429.
	AcceptedTimeline []int `json:"accepted_timeline"`
	RefusedTimeline  []int `json:"refused_timeline"`
	// PeakInFlight is the most accepted requests the server served at once.
	PeakInFlight int `json:"peak_in_flight"`

	// Changes measure the adaptation to each scheduled change of the
	// request limit.
	Changes []ChangeResult `json:"changes,omitempty"`
	// Sharing measures the clients' sharing of one key, when there are
	// several.
	Sharing *SharingResult `json:"sharing,omitempty"`
	// Streams are the figures of each stream, in order.
	Streams []StreamResult `json:"streams"`
	// Failures are the failed requests' messages, commonest first.
	Failures []Failure `json:"failures,omitempty"`

	attempts []attemptRecord
	start    time.Time
}

// ChangeResult is the adaptation to one change of the request limit.
type ChangeResult struct {
	At   time.Duration `json:"at_ns"`
	From float64       `json:"from"` // the limit before, in requests per second
	To   float64       `json:"to"`   // and after
	// Settled is how long after the change the client settled: for a fall,
	// the first instant (in steps of 100ms) from which its 429s stay under
	// 3% of its attempts and it is accepted at 85% of the new limit or more
	// (over at least a second, until the work or the next change ends; the
	// server keeps it under the limit); for a rise,
	// the end of the first half-second in which it was accepted at 90% of
	// the new limit or more. Reached is false when it never did; Settled
	// is then the time it had.
	Settled time.Duration `json:"settled_ns"`
	Reached bool          `json:"reached"`
}

// SharingResult measures several clients on one key, from 3s after the
// start (when each has had time to learn) until the first of them is done.
type SharingResult struct {
	From time.Duration `json:"from_ns"`
	To   time.Duration `json:"to_ns"`
	// Aggregate is the accepted rate of all clients over the limit.
	Aggregate float64 `json:"aggregate"`
	// RefusedShare is the share of their attempts answered 429.
	RefusedShare float64 `json:"refused_share"`
	// ClientShares are each client's share of the accepted requests.
	ClientShares []float64 `json:"client_shares"`
}

// StreamResult is the figures of one stream.
type StreamResult struct {
	Name        string        `json:"name"`
	Requests    int           `json:"requests"`
	Elapsed     time.Duration `json:"elapsed_ns"` // from the stream's Start to its last end
	Bound       time.Duration `json:"bound_ns"`
	Ratio       float64       `json:"ratio"`
	Failed      int           `json:"failed"`
	BoundFailed int           `json:"bound_failed"`
}

// Failure is one kind of failure: an example message and how many failed
// requests had a message of that kind (the same but for numbers).
type Failure struct {
	Example string `json:"example"`
	Count   int    `json:"count"`
}

// Rates returns the rates, per second, of the attempts sent during each bin
// of width bin from the start that were answered 2xx and 429.
func (r *Result) Rates(bin time.Duration) (accepted, refused []float64) {
	for _, a := range r.attempts {
		i := int(a.sent.Sub(r.start) / bin)
		var tl *[]float64
		switch {
		case a.status >= 200 && a.status <= 299:
			tl = &accepted
		case a.status == 429:
			tl = &refused
		default:
			continue
		}
		for len(accepted) <= i || len(refused) <= i {
			accepted, refused = append(accepted, 0), append(refused, 0)
		}
		(*tl)[i] += float64(time.Second) / float64(bin)
	}
	return accepted, refused
}

// run is the raw record of one run.
type run struct {
	start    time.Time
	stop     time.Duration
	requests [][]requestRecord
	attempts []attemptRecord
	answers  []Answer
	stats    Stats
}

func measure(s Scenario, b Bound, rn run) *Result {
	r := &Result{Scenario: s.Name, Bound: b.Total, Stop: rn.stop, FirstRefusal: -1, attempts: rn.attempts, start: rn.start}
	r.PeakInFlight = rn.stats.PeakInFlight
	var latencies, added []time.Duration
	failures := map[string]*Failure{}
	var order []string
	clientEnd := make([]time.Time, s.clients())
	for i, reqs := range rn.requests {
		st := s.Streams[i]
		sr := StreamResult{Name: st.Name, Requests: len(reqs), Bound: b.Streams[i].Elapsed, BoundFailed: b.Streams[i].Failed}
		begin := rn.start.Add(st.Start)
		end := begin
		for _, q := range reqs {
			r.Requests++
			r.Retries += max(q.attempts-1, 0)
			if !q.ok {
				sr.Failed++
			}
			if q.cut {
				r.Cut++
				r.Stopped = true
				end = maxTime(end, rn.start.Add(rn.stop))
				continue
			}
			end = maxTime(end, q.ended)
			latencies = append(latencies, q.ended.Sub(q.sent))
			if q.ok {
				added = append(added, max(0, q.ended.Sub(q.sent)-q.lastTrip))
			} else {
				k := failureKind(q.failure)
				if failures[k] == nil {
					failures[k] = &Failure{Example: q.failure}
					order = append(order, k)
				}
				failures[k].Count++
			}
		}
		clientEnd[st.Client] = maxTime(clientEnd[st.Client], end)
		sr.Elapsed = end.Sub(begin)
		sr.Ratio = ratio(sr.Elapsed, sr.Bound)
		r.Failed += sr.Failed
		r.BoundFailed += sr.BoundFailed
		r.Elapsed = max(r.Elapsed, end.Sub(rn.start))
		r.Streams = append(r.Streams, sr)
	}
	r.Ratio = ratio(r.Elapsed, r.Bound)
	for _, k := range order {
		r.Failures = append(r.Failures, *failures[k])
	}
	slices.SortStableFunc(r.Failures, func(a, b Failure) int { return b.Count - a.Count })
	r.P50, r.P99 = percentile(latencies, 50), percentile(latencies, 99)
	r.AddedP50, r.AddedP99 = percentile(added, 50), percentile(added, 99)

	var first time.Time
	for _, a := range rn.attempts {
		r.Attempts++
		sec := int(a.sent.Sub(rn.start) / time.Second)
		switch {
		case a.status >= 200 && a.status <= 299:
			r.AcceptedTimeline = bumpBoth(&r.RefusedTimeline, r.AcceptedTimeline, sec)
		case a.status == 429:
			r.Refused++
			r.RefusedTimeline = bumpBoth(&r.AcceptedTimeline, r.RefusedTimeline, sec)
		case a.status == 503 || a.status == StatusOverloaded:
			r.Overloaded++
		}
		if a.status == 429 || a.status == 503 || a.status == StatusOverloaded {
			if first.IsZero() || a.answered.Before(first) {
				first = a.answered
			}
		}
	}
	if r.Requests > 0 {
		r.RefusedPerRequest = float64(r.Refused) / float64(r.Requests)
	}
	if !first.IsZero() {
		r.FirstRefusal = first.Sub(rn.start)
		r.afterRefusal(s, rn, first)
		r.MostPerRetryAfter = politeness(s, rn, first)
	}
	r.Changes = changes(s, rn)
	r.Sharing = sharing(s, rn, clientEnd)
	return r
}

// afterRefusal measures the run from the first refusal, at t.
func (r *Result) afterRefusal(s Scenario, rn run, t time.Time) {
	done := make([]int, len(s.Streams))
	for _, a := range rn.attempts {
		if a.stream >= 0 && a.status >= 200 && a.status <= 299 && !a.sent.After(t) {
			done[a.stream]++
		}
	}
	left := 0
	for i, st := range s.Streams {
		left += st.Requests - min(done[i], st.Requests)
	}
	if left == 0 {
		return
	}
	b := s.boundAfter(rn.start, t, rn.answers, done)
	r.BoundAfterRefusal = b.Total
	r.RatioAfterRefusal = ratio(rn.start.Add(r.Elapsed).Sub(t), b.Total)
}

// politeness is the most attempts a client sent for one model, after the
// first refusal reached a client at t, in any span as long as the shortest
// Retry-After the server announced.
func politeness(s Scenario, rn run, t time.Time) int {
	var window time.Duration
	for _, a := range rn.answers {
		if a.RetryAfter > 0 && (window == 0 || a.RetryAfter < window) {
			window = a.RetryAfter
		}
	}
	if window == 0 {
		return 0
	}
	type partition struct {
		client int
		model  string
	}
	sent := map[partition][]time.Time{}
	for _, a := range rn.attempts {
		if !a.sent.After(t) {
			continue
		}
		p := partition{client: a.client}
		if a.stream >= 0 {
			p.model = s.Streams[a.stream].Model
		}
		sent[p] = append(sent[p], a.sent)
	}
	most := 0
	for _, ts := range sent {
		slices.SortFunc(ts, func(a, b time.Time) int { return a.Compare(b) })
		j := 0
		for i := range ts {
			for ts[j].Add(window).Compare(ts[i]) <= 0 {
				j++
			}
			most = max(most, i-j+1)
		}
	}
	return most
}

// changes measures the adaptation to each scheduled change that moved the
// request limit.
func changes(s Scenario, rn run) []ChangeResult {
	sched := slices.Clone(s.Server.Schedule)
	slices.SortStableFunc(sched, func(a, b Change) int { return int(a.At - b.At) })
	var lastOK time.Time
	for _, a := range rn.attempts {
		if a.status >= 200 && a.status <= 299 {
			lastOK = maxTime(lastOK, a.sent)
		}
	}
	var out []ChangeResult
	for k, c := range sched {
		from, to := s.LimitAt(c.At-1), s.LimitAt(c.At)
		if from == to || math.IsInf(to, 1) || to <= 0 {
			continue
		}
		at := rn.start.Add(c.At)
		end := lastOK
		if k+1 < len(sched) {
			end = minTime(end, rn.start.Add(sched[k+1].At))
		}
		cr := ChangeResult{At: c.At, From: from, To: to, Settled: end.Sub(at)}
		if to < from {
			cr.Settled, cr.Reached = settleAfterFall(rn.attempts, at, end, to)
		} else {
			cr.Settled, cr.Reached = reachAfterRise(rn.attempts, at, end, to)
		}
		if !cr.Reached {
			cr.Settled = max(0, end.Sub(at))
		}
		out = append(out, cr)
	}
	return out
}

const (
	settleStep  = 100 * time.Millisecond
	settleLeast = time.Second
	reachWindow = 500 * time.Millisecond
	reachStep   = 50 * time.Millisecond
	settleShare = 0.03
	settleFloor = 0.85
	reachShare  = 0.90
	shareFrom   = 3 * time.Second
	shareLeast  = time.Second
)

func settleAfterFall(as []attemptRecord, at, end time.Time, limit float64) (time.Duration, bool) {
	for t := at; end.Sub(t) >= settleLeast; t = t.Add(settleStep) {
		ok, refused, all := countSent(as, t, end)
		secs := end.Sub(t).Seconds()
		rate := float64(ok) / secs
		// The server holds the rate under the limit itself: what can
		// miss is the 429s, and using too little of the new limit.
		if all > 0 && float64(refused) < settleShare*float64(all) && rate >= settleFloor*limit {
			return t.Sub(at), true
		}
	}
	return 0, false
}

func reachAfterRise(as []attemptRecord, at, end time.Time, limit float64) (time.Duration, bool) {
	for t := at; !t.Add(reachWindow).After(end); t = t.Add(reachStep) {
		ok, _, _ := countSent(as, t, t.Add(reachWindow))
		if float64(ok) >= reachShare*limit*reachWindow.Seconds() {
			return t.Add(reachWindow).Sub(at), true
		}
	}
	return 0, false
}

// countSent counts the attempts sent in [from, to): answered 2xx, 429, all.
func countSent(as []attemptRecord, from, to time.Time) (ok, refused, all int) {
	for _, a := range as {
		if a.sent.Before(from) || !a.sent.Before(to) {
			continue
		}
		all++
		switch {
		case a.status >= 200 && a.status <= 299:
			ok++
		case a.status == 429:
			refused++
		}
	}
	return ok, refused, all
}

func sharing(s Scenario, rn run, clientEnd []time.Time) *SharingResult {
	if s.clients() < 2 {
		return nil
	}
	from := rn.start.Add(shareFrom)
	to := clientEnd[0]
	for _, e := range clientEnd {
		to = minTime(to, e)
	}
	if to.Sub(from) < shareLeast {
		return nil
	}
	sh := &SharingResult{From: shareFrom, To: to.Sub(rn.start), ClientShares: make([]float64, s.clients())}
	ok, refused, all := countSent(rn.attempts, from, to)
	for _, a := range rn.attempts {
		if !a.sent.Before(from) && a.sent.Before(to) && a.status >= 200 && a.status <= 299 {
			sh.ClientShares[a.client]++
		}
	}
	if limit := s.LimitAt(shareFrom); limit > 0 && !math.IsInf(limit, 1) {
		sh.Aggregate = float64(ok) / (limit * to.Sub(from).Seconds())
	}
	if all > 0 {
		sh.RefusedShare = float64(refused) / float64(all)
	}
	for i := range sh.ClientShares {
		if ok > 0 {
			sh.ClientShares[i] /= float64(ok)
		}
	}
	return sh
}

func ratio(d, bound time.Duration) float64 {
	if bound <= 0 || bound == Never {
		return 0
	}
	return float64(d) / float64(bound)
}

// percentile is the nearest-rank p-th percentile of ds: the smallest value
// at or below which p percent of them lie. It is 0 for no values.
func percentile(ds []time.Duration, p float64) time.Duration {
	if len(ds) == 0 {
		return 0
	}
	s := slices.Clone(ds)
	slices.Sort(s)
	rank := int(math.Ceil(p / 100 * float64(len(s))))
	return s[min(max(rank, 1), len(s))-1]
}

// bumpBoth adds one to tl[i], keeping tl and other the same length.
func bumpBoth(other *[]int, tl []int, i int) []int {
	tl = bump(tl, i)
	for len(*other) < len(tl) {
		*other = append(*other, 0)
	}
	for len(tl) < len(*other) {
		tl = append(tl, 0)
	}
	return tl
}

var numbers = regexp.MustCompile(`0x[0-9a-fA-F]+|\b[0-9a-f]{8,}\b|[0-9]+(\.[0-9]+)?`)

// failureKind is a failure message with its numbers (ports, durations,
// attempt counts, pointers, hashes) masked, so that failures of one kind
// count together.
func failureKind(msg string) string { return numbers.ReplaceAllString(msg, "#") }

func maxTime(a, b time.Time) time.Time {
	if b.After(a) {
		return b
	}
	return a
}

func minTime(a, b time.Time) time.Time {
	if b.Before(a) {
		return b
	}
	return a
}
