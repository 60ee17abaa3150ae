package redislimit

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/pacehttp/pacehttp"
	pacetest "github.com/pacehttp/pacehttp/httptest_helpers"
	"github.com/redis/go-redis/v9"
)

// The child processes of a fleet test are this test binary run again with
// childEnv set; the rest of their settings come in the environment too.
const (
	childEnv      = "REDISLIMIT_CHILD"
	childRedis    = "REDISLIMIT_REDIS" // empty: in-process budgets only
	childAPI      = "REDISLIMIT_API"
	childStart    = "REDISLIMIT_START" // unix nanoseconds at which to begin
	childDuration = "REDISLIMIT_DURATION"
	childWorkers  = "REDISLIMIT_WORKERS"
	childRate     = "REDISLIMIT_RATE" // the rate and burst to state, "" for none
)

// childReport is what a child prints, as JSON, when done.
type childReport struct {
	Done   int // requests answered 200
	Failed int // requests that ended otherwise
}

// TestChildProcess is the body of a fleet member; run alone, it does
// nothing.
func TestChildProcess(t *testing.T) {
	if os.Getenv(childEnv) == "" {
		t.Skip("runs only as a child of a fleet test")
	}
	dur, _ := time.ParseDuration(os.Getenv(childDuration))
	workers, _ := strconv.Atoi(os.Getenv(childWorkers))
	start, _ := strconv.ParseInt(os.Getenv(childStart), 10, 64)

	opts := []pacehttp.Option{pacehttp.WithPartitionSecret([]byte("fleet-test"))}
	var rate float64
	var burst int
	if _, err := fmt.Sscanf(os.Getenv(childRate), "%g/%d", &rate, &burst); err == nil {
		opts = append(opts, pacehttp.WithRate(rate, burst))
	}
	if addr := os.Getenv(childRedis); addr != "" {
		c := redis.NewClient(&redis.Options{Addr: addr, ContextTimeoutEnabled: true})
		defer c.Close()
		lim := New(c, WithHook(nil))
		defer lim.Close()
		opts = append(opts, pacehttp.WithLimiter(lim))
	}
	client := &http.Client{Transport: pacehttp.New(nil, opts...)}
	defer client.CloseIdleConnections()
	time.Sleep(time.Until(time.Unix(0, start)))
	end := time.Now().Add(dur)
	var done, failed atomic.Int64
	var wg sync.WaitGroup
	for range workers {
		wg.Go(func() {
			for time.Now().Before(end) {
				req, _ := http.NewRequest("GET", os.Getenv(childAPI), nil)
				req.Header.Set("Authorization", "Bearer sk-fleet-shared-key")
				resp, err := client.Do(req)
				if err == nil {
					io.Copy(io.Discard, resp.Body)
					resp.Body.Close()
				}
				if err == nil && resp.StatusCode == 200 {
					done.Add(1)
				} else {
					failed.Add(1)
				}
			}
		})
	}
	wg.Wait()
	json.NewEncoder(os.Stdout).Encode(childReport{Done: int(done.Load()), Failed: int(failed.Load())})
}

// fleetResult is the outcome of one fleet run, as the API saw it.
type fleetResult struct {
	procs           int
	redis           bool
	dialect         pacetest.Dialect
	stated          string
	sendRate        float64 // attempts per second over the limit, in the steady state
	acceptRate      float64 // accepted per second over the limit, likewise
	accepted        int
	refusedTimeline []int
	refused         int
	done            int
	failed          int
}

func (r fleetResult) String() string {
	return fmt.Sprintf("procs=%d redis=%-5v dialect=%-7v stated=%-5s sent/limit=%.2f accepted/limit=%.2f 429/request=%.3f done=%d failed=%d",
		r.procs, r.redis, r.dialect, r.stated, r.sendRate, r.acceptRate, float64(r.refused)/float64(max(r.done, 1)), r.done, r.failed)
}

// runFleet runs procs child processes, each with workers goroutines,
// sending as fast as their pacers let them to one fake API for dur.
// stated, when not empty, is the rate the children state, as "rate/burst".
func runFleet(t *testing.T, procs int, srv *redisServer, cfg pacetest.Config, stated string, dur time.Duration) fleetResult {
	t.Helper()
	created := time.Now()
	api := pacetest.NewAPI(cfg)
	defer api.Close()
	start := time.Now().Add(300 * time.Millisecond) // time for the children to start
	env := append(os.Environ(),
		childEnv+"=1",
		childAPI+"="+api.URL(),
		childStart+"="+strconv.FormatInt(start.UnixNano(), 10),
		childDuration+"="+dur.String(),
		childWorkers+"=4",
		childRate+"="+stated,
	)
	if srv != nil {
		env = append(env, childRedis+"="+srv.addr)
	}
	type child struct {
		cmd *exec.Cmd
		out bytes.Buffer
	}
	children := make([]*child, procs)
	for i := range children {
		c := &child{cmd: exec.Command(os.Args[0], "-test.run=^TestChildProcess$", "-test.count=1")}
		c.cmd.Env = env
		c.cmd.Stdout = &c.out
		c.cmd.Stderr = os.Stderr
		if err := c.cmd.Start(); err != nil {
			t.Fatal(err)
		}
		children[i] = c
	}
	res := fleetResult{procs: procs, redis: srv != nil, dialect: cfg.Dialect, stated: stated}
	for i, c := range children {
		if err := c.cmd.Wait(); err != nil {
			t.Fatalf("child %d: %v\n%s", i, err, c.out.String())
		}
		var rep childReport
		// The report is the first line; "PASS" follows.
		if err := json.NewDecoder(&c.out).Decode(&rep); err != nil {
			t.Fatalf("child %d: report: %v", i, err)
		}
		res.done += rep.Done
		res.failed += rep.Failed
	}
	st := api.Stats()
	res.refused = st.Refused
	res.refusedTimeline = st.RefusedTimeline
	res.accepted = st.Accepted
	// The steady state: whole seconds of the API's timeline inside the
	// run, the first one after the start left out for the server's burst.
	lo := int(start.Sub(created).Seconds()) + 2
	hi := int(start.Add(dur).Sub(created).Seconds())
	var sent, accepted, secs int
	for i := lo; i < hi && i < len(st.Timeline); i++ {
		accepted += st.Timeline[i]
		sent += st.Timeline[i]
		if i < len(st.RefusedTimeline) {
			sent += st.RefusedTimeline[i]
		}
		secs++
	}
	if secs > 0 {
		res.sendRate = float64(sent) / float64(secs) / cfg.Rate
		res.acceptRate = float64(accepted) / float64(secs) / cfg.Rate
	}
	return res
}

// TestFleet runs four processes sharing one key through one Redis against
// an API that allows 40 requests a second, the rate they state: together
// they must keep to it, with next to no 429s. (Without Redis, four such
// processes meet about 0.3 429s per request; learning the rate from
// headers instead is measured by TestFleetMeasure.)
func TestFleet(t *testing.T) {
	srv := startRedis(t)
	const rate, burst = 40, 10
	dur := 3 * time.Second
	res := runFleet(t, 4, srv, pacetest.Config{Rate: rate, Burst: burst}, "40/10", dur)
	t.Log(res, "refused per second:", res.refusedTimeline)
	if max := burst + rate*(dur.Seconds()+0.5); float64(res.accepted) > max {
		t.Errorf("accepted %d, more than the limit allows (%v)", res.accepted, max)
	}
	// Pacing exactly at the server's rate, a request may now and then
	// reach it a hair early.
	if res.refused > 1 {
		t.Errorf("%d 429s, want at most 1", res.refused)
	}
	if min := rate * dur.Seconds() * 0.6; float64(res.done) < min {
		t.Errorf("only %d requests done, want at least %v: the fleet is far slower than the limit", res.done, min)
	}
}

// TestFleetMeasure prints, for 1, 2 and 4 processes sharing a key, the
// send rate and 429s with and without the Redis limiter. It runs only when
// REDISLIMIT_MEASURE is set, as it takes a while:
//
//	REDISLIMIT_MEASURE=1 go test -run TestFleetMeasure -v ./redislimit
func TestFleetMeasure(t *testing.T) {
	if os.Getenv("REDISLIMIT_MEASURE") == "" {
		t.Skip("set REDISLIMIT_MEASURE=1 to measure")
	}
	srv := startRedis(t)
	for _, c := range []struct {
		dialect pacetest.Dialect
		stated  string
	}{
		{pacetest.OpenAI, ""},
		{pacetest.None, ""},
		{pacetest.None, "40/10"},
	} {
		if f := os.Getenv("REDISLIMIT_MEASURE_ONLY"); f != "" && f != c.dialect.String()+c.stated {
			continue
		}
		for _, procs := range []int{1, 2, 4} {
			for _, s := range []*redisServer{nil, srv} {
				res := runFleet(t, procs, s, pacetest.Config{Rate: 40, Burst: 10, Dialect: c.dialect}, c.stated, 5*time.Second)
				t.Log(res)
			}
		}
	}
}
