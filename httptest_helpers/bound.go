package pacetest

import (
	"container/heap"
	"maps"
	"math"
	"slices"
	"time"
)

var inf = math.Inf(1)

// Never is the bound of work no client could finish.
const Never = time.Duration(math.MaxInt64)

// Bound is the physical bound of a scenario: what an ideal client would
// achieve. That client knows the server's rules and state, sends each
// request at the first instant the server would admit it (never a refused
// one), has the same workers, arrivals and deadlines as the scenario, and
// each of its requests takes Config.Latency, the least service time. No
// client can finish sooner: a ratio of 1.00 is perfect.
type Bound struct {
	// Total is when the ideal client's last request ended, from the start.
	Total time.Duration `json:"total_ns"`
	// Streams are the bounds of each stream, in order.
	Streams []StreamBound `json:"streams"`
}

// StreamBound is the bound of one stream.
type StreamBound struct {
	// Elapsed is from the stream's Start to the end of its last request.
	Elapsed time.Duration `json:"elapsed_ns"`
	// Failed counts the requests the ideal client could not get through
	// before their deadlines either.
	Failed int `json:"failed"`
}

// Bound computes the scenario's physical bound by running its server's
// rules, at their exact times, against the ideal client; it takes no real
// time. Work the server would never admit makes Total Never.
func (s Scenario) Bound() Bound {
	epoch := time.Unix(0, 0)
	o := newOracle(s, newAdmission(s.Server, epoch), epoch)
	o.adm.noPenalty, o.adm.noRecord = true, true
	for i, st := range s.Streams {
		o.begin(i, epoch.Add(st.Start), 0)
	}
	return o.run()
}

// maxOracleSteps stops an oracle that could run for ever, as against a
// server that overloads every request.
const maxOracleSteps = 5_000_000

// oracle runs the ideal client against an admission, in simulated time.
//
// A refused request waits in line: requests refused for a known time by one
// set of limits, at one cost, would all be refused or admitted alike, so
// only the head of their line tries again, when the limits could admit it,
// and the next tries at once if it got in. Requests refused for concurrency
// wait in a line of their set, tried in order as its requests end.
type oracle struct {
	s       Scenario
	adm     *admission
	epoch   time.Time
	key     string
	events  events
	seq     int
	waiting map[line][]*oracleRequest
	woken   map[line]bool // a wake is scheduled for the line
	parked  map[*limitSet][]*oracleRequest
	served  int // requests being served
	st      []oracleStream
}

// line groups the requests refused by one set of limits at one cost.
type line struct {
	set  *limitSet
	cost int
}

type oracleStream struct {
	next   int // index of the next request a worker takes
	failed int
	left   int // requests neither done nor failed
	end    time.Time
}

type oracleRequest struct {
	stream, i int
	deadline  time.Time // zero: none
	cost      int
	model     string
}

type eventKind int

const (
	workerFree eventKind = iota // a closed-loop worker takes the next request
	try                         // a request is sent
	wake                        // the head of a line tries again
	done                        // a request's service ends
	release                     // a request served before the oracle began ends
)

type event struct {
	at   time.Time
	seq  int
	kind eventKind
	st   int
	req  *oracleRequest
	d    *decision
	line line
}

// events is a heap of events, earliest first, in order of scheduling at
// one instant.
type events []*event

func (e events) Len() int { return len(e) }
func (e events) Less(i, j int) bool {
	if !e[i].at.Equal(e[j].at) {
		return e[i].at.Before(e[j].at)
	}
	return e[i].seq < e[j].seq
}
func (e events) Swap(i, j int) { e[i], e[j] = e[j], e[i] }
func (e *events) Push(x any)   { *e = append(*e, x.(*event)) }
func (e *events) Pop() any {
	old := *e
	x := old[len(old)-1]
	old[len(old)-1] = nil
	*e = old[:len(old)-1]
	return x
}

func newOracle(s Scenario, adm *admission, epoch time.Time) *oracle {
	o := &oracle{
		s: s, adm: adm, epoch: epoch,
		st:      make([]oracleStream, len(s.Streams)),
		waiting: make(map[line][]*oracleRequest),
		woken:   make(map[line]bool),
		parked:  make(map[*limitSet][]*oracleRequest),
	}
	if s.Server.PerKey {
		o.key = scenarioKey
	}
	for i, st := range s.Streams {
		o.st[i] = oracleStream{left: st.Requests, end: epoch.Add(st.Start)}
	}
	return o
}

func (o *oracle) push(e event) {
	o.seq++
	e.seq = o.seq
	heap.Push(&o.events, &e)
}

// begin starts stream i at from with its first skip requests already done;
// an open loop's requests that arrived by then are all sent at from.
func (o *oracle) begin(i int, from time.Time, skip int) {
	st := o.s.Streams[i]
	os := &o.st[i]
	os.next = skip
	os.left = st.Requests - skip
	if os.left <= 0 {
		return
	}
	if st.Workers > 0 {
		for range min(st.Workers, os.left) {
			o.push(event{at: from, kind: workerFree, st: i})
		}
		return
	}
	start := o.epoch.Add(st.Start)
	for j, off := range st.arrivals()[skip:] {
		at := start.Add(off)
		if at.Before(from) {
			at = from
		}
		o.push(event{at: at, kind: try, req: o.request(i, skip+j, at)})
	}
	os.next = st.Requests
}

func (o *oracle) request(stream, i int, sent time.Time) *oracleRequest {
	st := o.s.Streams[stream]
	r := &oracleRequest{stream: stream, i: i}
	if st.Deadline > 0 {
		r.deadline = sent.Add(st.Deadline)
	}
	body := st.body(i)
	if o.s.Server.Cost == nil {
		r.cost = defaultCost(nil, body) // without building a request
	} else {
		r.cost = o.adm.cfg.Cost(st.newRequest(memoryURL, i), body)
	}
	if len(o.adm.cfg.Models) > 0 {
		r.model = modelOf(st.path(), body)
	}
	return r
}

func (o *oracle) run() Bound {
	steps := 0
	for o.events.Len() > 0 {
		if steps++; steps > maxOracleSteps {
			return o.bound(true)
		}
		e := heap.Pop(&o.events).(*event)
		switch e.kind {
		case workerFree:
			os := &o.st[e.st]
			if os.next < o.s.Streams[e.st].Requests {
				i := os.next
				os.next++
				o.send(e.at, o.request(e.st, i, e.at), false)
			}
		case try:
			o.send(e.at, e.req, false)
		case wake:
			o.woken[e.line] = false
			o.drain(e.at, e.line)
		case done, release:
			o.adm.release(*e.d, e.at, false)
			o.served--
			if e.kind == done {
				o.finish(e.at, e.req, false)
			}
			o.unpark(e.at, e.d.set)
		}
	}
	return o.bound(false)
}

// outcome is what became of a request the oracle sent.
type outcome int

const (
	admitted outcome = iota
	gaveUp           // failed: it could not end before its deadline
	inLine           // refused: waits in a line
	again            // overloaded at random: sent again at once
)

// send sends r at now; if it is refused it joins a line, at the front if
// front is set (it was the head, and keeps its place).
func (o *oracle) send(now time.Time, r *oracleRequest, front bool) outcome {
	latency := o.adm.cfg.Latency
	late := func(at time.Time) bool { return !r.deadline.IsZero() && at.Add(latency).After(r.deadline) }
	if late(now) {
		o.finish(minTime(now, r.deadline), r, true)
		return gaveUp
	}
	d := o.adm.decide(now, o.key, r.model, r.cost)
	switch {
	case d.verdict == accept:
		o.served++
		o.push(event{at: now.Add(latency), kind: done, req: r, d: &d})
		return admitted
	case d.verdict == tooLarge:
		o.finish(now, r, true)
		return gaveUp
	case d.recheck > 0:
		if late(now.Add(d.recheck)) {
			o.finish(now, r, true)
			return gaveUp
		}
		l := line{d.set, r.cost}
		o.waiting[l] = enqueue(o.waiting[l], r, front)
		if !o.woken[l] {
			o.woken[l] = true
			o.push(event{at: now.Add(d.recheck), kind: wake, line: l})
		}
		return inLine
	case d.reason == "overload":
		o.push(event{at: now, kind: try, req: r}) // answered at once: try again
		return again
	case o.served > 0:
		o.parked[d.set] = enqueue(o.parked[d.set], r, front)
		return inLine
	default:
		o.finish(now, r, true) // refused with nothing in flight to wait for
		return gaveUp
	}
}

func enqueue(q []*oracleRequest, r *oracleRequest, front bool) []*oracleRequest {
	if front {
		return append([]*oracleRequest{r}, q...)
	}
	return append(q, r)
}

// drain sends the line's requests in order until one is refused.
func (o *oracle) drain(now time.Time, l line) {
	for len(o.waiting[l]) > 0 {
		q := o.waiting[l]
		r := q[0]
		o.waiting[l] = q[1:]
		if o.send(now, r, true) == inLine {
			if len(o.waiting[l]) == 0 || o.waiting[l][0] != r {
				// Parked for concurrency: the rest of the line waits
				// for the same room.
				rest := o.waiting[l]
				delete(o.waiting, l)
				set := l.set
				o.parked[set] = append(o.parked[set], rest...)
			}
			return
		}
	}
	delete(o.waiting, l)
}

// unpark sends the requests waiting for room in set, in order, until one is
// refused for room again.
func (o *oracle) unpark(now time.Time, set *limitSet) {
	for len(o.parked[set]) > 0 {
		q := o.parked[set]
		r := q[0]
		o.parked[set] = q[1:]
		if o.send(now, r, true) == inLine && len(o.parked[set]) > 0 && o.parked[set][0] == r {
			return
		}
	}
	delete(o.parked, set)
}

func (o *oracle) finish(now time.Time, r *oracleRequest, failed bool) {
	os := &o.st[r.stream]
	os.left--
	if failed {
		os.failed++
	}
	if now.After(os.end) {
		os.end = now
	}
	if o.s.Streams[r.stream].Workers > 0 {
		o.push(event{at: now, kind: workerFree, st: r.stream})
	}
}

func (o *oracle) bound(cut bool) Bound {
	var b Bound
	for i, os := range o.st {
		sb := StreamBound{Elapsed: os.end.Sub(o.epoch.Add(o.s.Streams[i].Start)), Failed: os.failed}
		if (cut || len(o.events) == 0) && os.left > 0 {
			sb = StreamBound{Elapsed: Never, Failed: os.failed + os.left}
		}
		if sb.Failed >= o.s.Streams[i].Requests {
			sb.Elapsed = Never // nothing got through: no time to compare with
		}
		b.Streams = append(b.Streams, sb)
		if sb.Elapsed == Never {
			b.Total = Never
		} else if b.Total != Never {
			b.Total = max(b.Total, os.end.Sub(o.epoch))
		}
	}
	return b
}

// boundAfter is the bound of the work left at t in a run whose server
// answered answers: the server's state at t is rebuilt by replaying every
// decision and release up to t, requests then in service end when they
// did, and from t the ideal client sends what was left, done[i] requests
// of stream i being already admitted. All of a stream's workers are free at
// t. The result's times count from t.
func (s Scenario) boundAfter(start, t time.Time, answers []Answer, done []int) Bound {
	adm := newAdmission(s.Server, start)
	adm.noRecord = true
	type op struct {
		seq     int64
		release bool
		a       int
	}
	var ops []op
	for i, a := range answers {
		if !a.Time.After(t) {
			ops = append(ops, op{a.seq, false, i})
			if !a.Done.IsZero() && !a.Done.After(t) {
				ops = append(ops, op{a.doneSeq, true, i})
			}
		}
	}
	slices.SortFunc(ops, func(x, y op) int { return int(x.seq - y.seq) })
	decided := make(map[int]decision)
	for _, p := range ops {
		a := answers[p.a]
		if p.release {
			adm.release(decided[p.a], a.Done, a.Abandoned)
			delete(decided, p.a)
			continue
		}
		d := adm.decide(a.Time, a.Key, a.Model, a.Cost)
		if d.verdict == accept {
			decided[p.a] = d
		}
	}
	adm.noPenalty = true

	o := newOracle(s, adm, start)
	inService := slices.Sorted(maps.Keys(decided)) // in the order of the run
	for _, i := range inService {
		a, d := answers[i], decided[i]
		end := a.Done
		if end.IsZero() {
			end = a.Time.Add(a.Service)
		}
		o.served++
		o.push(event{at: end, kind: release, d: &d})
	}
	for i, st := range s.Streams {
		from := start.Add(st.Start)
		if from.Before(t) {
			from = t
			o.st[i].end = t
		}
		o.begin(i, from, min(done[i], st.Requests))
	}
	b := o.run()
	// Count from t rather than from the start and the streams' starts.
	off := t.Sub(start)
	if b.Total != Never {
		b.Total = max(0, b.Total-off)
	}
	for i, st := range s.Streams {
		if sb := &b.Streams[i]; sb.Elapsed != Never {
			sb.Elapsed = max(0, sb.Elapsed+st.Start-off)
		}
	}
	return b
}
