package pacetest

import (
	"context"
	"errors"
	"io"
	"net/http"
	"strconv"
	"sync"
	"sync/atomic"
	"time"
)

// Runner drives clients through a Scenario against a fresh fake API and
// measures them. The zero Runner serves in memory and stops a run at three
// times its bound.
//
// In memory (API.Transport), inside a testing/synctest bubble, a run takes
// no real time and is exactly reproducible: everything, the server's rules
// included, waits on the bubble's clock. Over loopback it takes real time,
// as a demonstration should.
type Runner struct {
	// Loopback serves the scenario on a real loopback socket, through an
	// http.Transport; otherwise in memory, without sockets.
	Loopback bool
	// StopAt stops a run at this multiple of the scenario's bound, and not
	// before MinStop; requests still unfinished then count as failed, and
	// as cut. Zero means 3 and 2s. A scenario no client could finish is
	// stopped when its callers would have given up: each stream's start
	// plus its deadlines one after another, or a minute without deadlines.
	StopAt  float64
	MinStop time.Duration
	// Progress, if set, is called each time a request ends, with how many
	// have ended; it may be called from several goroutines at once.
	Progress func(ended int)

	// In memory, time stands still while code runs and answers take no
	// time to travel, so a burst's requests leave at one instant and a
	// refusal is heard the instant it is made. Network and Scatter bring
	// back what a real network and scheduler do; over loopback they are
	// real and these fields are ignored.
	//
	// Network is the round trip: each attempt reaches the server half of
	// it after it left, and its answer takes the other half back.
	Network time.Duration
	// Scatter starts each request up to Scatter late, by an amount fixed
	// by its stream and index, as goroutines woken together reach a client
	// some microseconds apart.
	Scatter time.Duration
}

// NewClient builds one independent client over base, which leads to the
// scenario's server and measures what passes through it. It is called once
// per client of the scenario, and what it returns must share no state with
// the other clients: they stand for separate processes.
type NewClient func(base http.RoundTripper) http.RoundTripper

// Run runs scenario s with clients from newClient and returns its figures.
// The error is for a scenario that cannot run; a client that fails
// requests still gets a Result.
func (r Runner) Run(s Scenario, newClient NewClient) (*Result, error) {
	if err := s.Validate(); err != nil {
		return nil, err
	}
	bound := s.Bound()
	api := NewAPI(s.Server)
	defer api.Close()
	var base http.RoundTripper = api.Transport()
	if r.Network > 0 {
		base = &network{next: base, half: r.Network / 2}
	}
	url := memoryURL
	scatter := r.Scatter
	if r.Loopback {
		scatter = 0
		url = api.URL()
		tr := &http.Transport{MaxIdleConnsPerHost: 512, IdleConnTimeout: 30 * time.Second}
		defer tr.CloseIdleConnections()
		base = tr
	}
	start := api.Start()
	stop := r.stopAfter(s, bound.Total)
	// The stop cancels the requests rather than giving them a deadline: a
	// client that refuses at once a wait past its caller's deadline must
	// not take the end of the run for its callers' patience.
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	stopper := time.AfterFunc(time.Until(start.Add(stop)), cancel)
	defer stopper.Stop()

	rec := &recorder{}
	clients := make([]http.RoundTripper, s.clients())
	for i := range clients {
		clients[i] = newClient(&meter{next: base, client: i, rec: rec})
	}
	reqs := make([][]requestRecord, len(s.Streams))
	var ended atomic.Int64
	progress := func() {
		n := int(ended.Add(1))
		if r.Progress != nil {
			r.Progress(n)
		}
	}
	var wg sync.WaitGroup
	for i := range s.Streams {
		reqs[i] = make([]requestRecord, s.Streams[i].Requests)
		wg.Go(func() {
			run := streamRun{ctx: ctx, s: s, i: i, rt: clients[s.Streams[i].Client], url: url, out: reqs[i], progress: progress, scatter: scatter}
			run.drive(start)
		})
	}
	wg.Wait()
	for _, c := range clients {
		if ci, ok := c.(interface{ CloseIdleConnections() }); ok {
			ci.CloseIdleConnections()
		}
	}

	return measure(s, bound, run{
		start:    start,
		stop:     stop,
		requests: reqs,
		attempts: rec.all(),
		answers:  api.Answers(),
		stats:    api.Stats(),
	}), nil
}

func (r Runner) stopAfter(s Scenario, bound time.Duration) time.Duration {
	factor, least := r.StopAt, r.MinStop
	if factor <= 0 {
		factor = 3
	}
	if least <= 0 {
		least = 2 * time.Second
	}
	if bound == Never {
		return max(least, s.patience())
	}
	return max(time.Duration(float64(bound)*factor), least)
}

// patience is how long the callers of a scenario would wait for its work
// if nothing got through: each stream's start plus its requests' deadlines
// one after another, or a minute for callers without a deadline.
func (s Scenario) patience() time.Duration {
	var most time.Duration
	for _, st := range s.Streams {
		wait := time.Minute
		switch {
		case st.Deadline > 0 && st.Workers > 0:
			wait = time.Duration((st.Requests+st.Workers-1)/st.Workers) * st.Deadline
		case st.Deadline > 0:
			wait = st.arrivals()[st.Requests-1] + st.Deadline
		}
		most = max(most, st.Start+wait)
	}
	return most
}

// requestRecord is what happened to one request of a stream.
type requestRecord struct {
	sent, ended time.Time
	ok          bool
	cut         bool   // still unfinished when the run was stopped
	failure     string // why a finished request failed: an error or a status
	attempts    int
	lastTrip    time.Duration // the final attempt's round trip, as the base saw it
}

// attemptRecord is one attempt, as the base transport saw it.
type attemptRecord struct {
	client, stream int // stream is -1 for an attempt of no request of ours
	sent, answered time.Time
	status         int // 0 for a transport error
}

type recorder struct {
	mu       sync.Mutex
	attempts []attemptRecord
}

func (r *recorder) add(a attemptRecord) {
	r.mu.Lock()
	r.attempts = append(r.attempts, a)
	r.mu.Unlock()
}

func (r *recorder) all() []attemptRecord {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.attempts
}

// tagKey carries a request's tag from the stream to the meter, through
// whatever clones a client makes.
type tagKey struct{}

type tag struct {
	stream   int
	attempts atomic.Int32
	lastTrip atomic.Int64
}

// meter is the base transport of every client: it records each attempt.
type meter struct {
	next   http.RoundTripper
	client int
	rec    *recorder
}

func (m *meter) RoundTrip(req *http.Request) (*http.Response, error) {
	t, _ := req.Context().Value(tagKey{}).(*tag)
	sent := time.Now()
	resp, err := m.next.RoundTrip(req)
	a := attemptRecord{client: m.client, stream: -1, sent: sent, answered: time.Now()}
	if err == nil {
		a.status = resp.StatusCode
	}
	if t != nil {
		a.stream = t.stream
		t.attempts.Add(1)
		t.lastTrip.Store(int64(a.answered.Sub(sent)))
	}
	m.rec.add(a)
	return resp, err
}

// CloseIdleConnections lets a client close the base's idle connections.
func (m *meter) CloseIdleConnections() {
	if ci, ok := m.next.(interface{ CloseIdleConnections() }); ok {
		ci.CloseIdleConnections()
	}
}

// streamRun sends one stream's requests.
type streamRun struct {
	ctx      context.Context
	s        Scenario
	i        int
	rt       http.RoundTripper
	url      string
	out      []requestRecord
	progress func()
	scatter  time.Duration
}

func (sr streamRun) drive(start time.Time) {
	st := sr.s.Streams[sr.i]
	begin := start.Add(st.Start)
	if !sleep(sr.ctx, time.Until(begin)) {
		sr.cutFrom(0)
		return
	}
	var wg sync.WaitGroup
	if st.Workers > 0 {
		var next atomic.Int64
		for range st.Workers {
			wg.Go(func() {
				for {
					i := int(next.Add(1)) - 1
					if i >= st.Requests {
						return
					}
					sr.out[i] = sr.send(i)
					sr.progress()
				}
			})
		}
		wg.Wait()
		return
	}
	for i, off := range st.arrivals() {
		if !sleep(sr.ctx, time.Until(begin.Add(off))) {
			sr.cutFrom(i)
			break
		}
		wg.Go(func() {
			sr.out[i] = sr.send(i)
			sr.progress()
		})
	}
	wg.Wait()
}

func (sr streamRun) cutFrom(i int) {
	for ; i < len(sr.out); i++ {
		sr.out[i] = requestRecord{cut: true}
		sr.progress()
	}
}

func (sr streamRun) send(i int) requestRecord {
	if sr.ctx.Err() != nil {
		return requestRecord{cut: true}
	}
	st := sr.s.Streams[sr.i]
	ctx := sr.ctx
	if st.Deadline > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, st.Deadline)
		defer cancel()
	}
	t := &tag{stream: sr.i}
	req := st.newRequest(sr.url, i).WithContext(context.WithValue(ctx, tagKey{}, t))
	rec := requestRecord{sent: time.Now()}
	if sr.scatter > 0 && !sleep(ctx, time.Duration(mix(uint64(sr.i)<<32|uint64(i))%uint64(sr.scatter))) {
		return requestRecord{cut: true}
	}
	resp, err := sr.rt.RoundTrip(req)
	if err == nil {
		_, err = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
	}
	rec.ended = time.Now()
	rec.attempts = int(t.attempts.Load())
	rec.lastTrip = time.Duration(t.lastTrip.Load())
	switch {
	case err != nil:
		rec.failure = err.Error()
	case resp.StatusCode < 200 || resp.StatusCode > 299:
		rec.failure = strconv.Itoa(resp.StatusCode) + " " + http.StatusText(resp.StatusCode)
	default:
		rec.ok = true
	}
	// A request the run's stop cut short is unfinished, not failed on its
	// own account.
	if !rec.ok && sr.ctx.Err() != nil && (err == nil || errors.Is(err, context.DeadlineExceeded) || errors.Is(err, context.Canceled)) {
		rec.cut, rec.failure = true, ""
	}
	return rec
}

// network delays each attempt on its way to the server and its answer on
// the way back; see Runner.Network.
type network struct {
	next http.RoundTripper
	half time.Duration
}

func (n *network) RoundTrip(req *http.Request) (*http.Response, error) {
	if !sleep(req.Context(), n.half) {
		if req.Body != nil {
			req.Body.Close()
		}
		return nil, req.Context().Err()
	}
	resp, err := n.next.RoundTrip(req)
	if err == nil && !sleep(req.Context(), n.half) {
		resp.Body.Close()
		return nil, req.Context().Err()
	}
	return resp, err
}

// mix scrambles x (SplitMix64's finaliser): nearby inputs give unrelated
// outputs.
func mix(x uint64) uint64 {
	x ^= x >> 30
	x *= 0xbf58476d1ce4e5b9
	x ^= x >> 27
	x *= 0x94d049bb133111eb
	return x ^ x>>31
}
