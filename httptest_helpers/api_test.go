package pacetest

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/google/go-cmp/cmp"
)

// costFromHeader lets a test choose each request's token cost.
func costFromHeader(r *http.Request, _ []byte) int {
	n, _ := strconv.Atoi(r.Header.Get("X-Cost"))
	return n
}

// call sends one request with the given credential and cost, drains and
// closes the body, and returns the response with its header.
func call(t *testing.T, rt http.RoundTripper, key string, cost int) *http.Response {
	t.Helper()
	req := get(t, "http://api.test/v1/messages")
	if key != "" {
		req.Header.Set("Authorization", "Bearer "+key)
	}
	req.Header.Set("X-Cost", strconv.Itoa(cost))
	resp, err := rt.RoundTrip(req)
	if err != nil {
		t.Fatalf("RoundTrip: %v", err)
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp
}

func TestAPIAcceptsBurstPlusRate(t *testing.T) {
	tests := []struct {
		rate         float64
		burst        int
		seconds      int
		wantTimeline []int
	}{
		{rate: 5, burst: 10, seconds: 3, wantTimeline: []int{14, 5, 5, 1}},
		{rate: 0.5, burst: 1, seconds: 10, wantTimeline: []int{1, 0, 1, 0, 1, 0, 1, 0, 1, 0, 1}},
		{rate: 100, burst: 1, seconds: 1, wantTimeline: []int{100, 1}},
	}
	for _, tt := range tests {
		t.Run(strconv.FormatFloat(tt.rate, 'g', -1, 64), func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				api := NewAPI(Config{Rate: tt.rate, Burst: tt.burst})
				defer api.Close()
				rt := api.Transport()
				end := time.Now().Add(time.Duration(tt.seconds) * time.Second)
				probes := 0
				// Probe every 10ms, both ends included: far more often than
				// the limit allows, so every token is taken as it arrives.
				for !time.Now().After(end) {
					call(t, rt, "", 1)
					probes++
					time.Sleep(10 * time.Millisecond)
				}
				st := api.Stats()
				want := tt.burst + int(tt.rate*float64(tt.seconds))
				if st.Accepted != want || st.Refused != probes-want || st.Requests != probes {
					t.Errorf("Accepted %d, Refused %d, Requests %d; want %d, %d, %d",
						st.Accepted, st.Refused, st.Requests, want, probes-want, probes)
				}
				if diff := cmp.Diff(tt.wantTimeline, st.Timeline); diff != "" {
					t.Errorf("Timeline (-want +got):\n%s", diff)
				}
			})
		})
	}
}

func TestAPIRefusal(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		api := NewAPI(Config{Rate: 0.25, Burst: 1})
		defer api.Close()
		rt := api.Transport()
		call(t, rt, "", 1)

		time.Sleep(time.Second + 500*time.Millisecond)
		req := get(t, "http://api.test/")
		resp, err := rt.RoundTrip(req)
		if err != nil {
			t.Fatal(err)
		}
		var body struct {
			Error struct{ Type, Message string }
		}
		err = json.NewDecoder(resp.Body).Decode(&body)
		resp.Body.Close()
		if err != nil {
			t.Fatalf("429 body is not JSON: %v", err)
		}
		got := answer{Status: resp.StatusCode, ContentType: resp.Header.Get("Content-Type"), RetryAfter: resp.Header.Get("Retry-After"), Body: body.Error.Type}
		// 2.5s are missing; Retry-After rounds up to whole seconds.
		want := answer{Status: 429, ContentType: "application/json", RetryAfter: "3", Body: "rate_limit_error"}
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("refusal (-want +got):\n%s", diff)
		}

		// Waiting exactly Retry-After is enough.
		time.Sleep(3 * time.Second)
		if resp := call(t, rt, "", 1); resp.StatusCode != 200 {
			t.Errorf("after Retry-After: status %d, want 200", resp.StatusCode)
		}
		// A wait shorter than a second still says 1.
		api.SetRate(1000)
		call(t, rt, "", 1)
		if ra := call(t, rt, "", 1).Header.Get("Retry-After"); ra != "1" {
			t.Errorf("Retry-After for a 1ms wait = %q, want 1", ra)
		}
	})
}

func TestAPITokenLimit(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		api := NewAPI(Config{Rate: 1, Burst: 5, TokenRate: 10, TokenBurst: 100, Cost: costFromHeader, Dialect: OpenAI})
		defer api.Close()
		rt := api.Transport()
		type row struct {
			Status                       int
			RetryAfter, ReqLeft, TokLeft string
		}
		do := func(cost int) row {
			r := call(t, rt, "", cost)
			h := r.Header
			return row{r.StatusCode, h.Get("Retry-After"), h.Get("X-Ratelimit-Remaining-Requests"), h.Get("X-Ratelimit-Remaining-Tokens")}
		}
		got := []row{
			do(60),  // fits
			do(60),  // 40 tokens left: refused on tokens, no request used
			do(40),  // fits exactly
			do(101), // could never fit
			do(1),   // no tokens left
		}
		want := []row{
			{200, "", "4", "40"},
			{429, "2", "4", "40"},
			{200, "", "3", "0"},
			{413, "", "3", "0"},
			{429, "1", "3", "0"},
		}
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("answers (-want +got):\n%s", diff)
		}

		// The other way round: a refusal on requests leaves tokens alone.
		time.Sleep(time.Minute) // both buckets full again
		for range 5 {
			do(1)
		}
		if got, want := do(1), (row{429, "1", "0", "95"}); got != want {
			t.Errorf("refused on requests: got %+v, want %+v", got, want)
		}
		st := api.Stats()
		if st.Accepted != 7 || st.Refused != 3 || st.TooLarge != 1 {
			t.Errorf("Stats: %+v", st)
		}
	})
}

func TestAPIPerKey(t *testing.T) {
	for _, perKey := range []bool{false, true} {
		t.Run(strconv.FormatBool(perKey), func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				api := NewAPI(Config{Rate: 1, Burst: 1, PerKey: perKey})
				defer api.Close()
				rt := api.Transport()
				var got []int
				for _, key := range []string{"a", "a", "b", "b"} {
					got = append(got, call(t, rt, key, 1).StatusCode)
				}
				req := get(t, "http://api.test/")
				req.Header.Set("X-Api-Key", "c")
				resp := do(t, rt, req)
				got = append(got, resp.Status)

				want := []int{200, 429, 429, 429, 429}
				if perKey {
					want = []int{200, 429, 200, 429, 200}
				}
				if diff := cmp.Diff(want, got); diff != "" {
					t.Errorf("statuses for keys a a b b c (-want +got):\n%s", diff)
				}
			})
		})
	}
}

func TestAPISetRate(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		api := NewAPI(Config{Rate: 10, Burst: 1})
		defer api.Close()
		rt := api.Transport()
		probe := func(d time.Duration) {
			for end := time.Now().Add(d); time.Now().Before(end); time.Sleep(10 * time.Millisecond) {
				call(t, rt, "", 1)
			}
		}
		probe(2 * time.Second)
		api.SetRate(5) // the limit halves...
		probe(2 * time.Second)
		api.SetRate(10) // ...and recovers
		probe(2 * time.Second)
		if diff := cmp.Diff([]int{10, 10, 5, 5, 10, 10}, api.Stats().Timeline); diff != "" {
			t.Errorf("Timeline (-want +got):\n%s", diff)
		}
	})
}

func TestAPIOverload(t *testing.T) {
	const n = 1000
	run := func(seed uint64) (statuses []int, st Stats) {
		api := NewAPI(Config{Overload: 0.25, Seed: seed})
		defer api.Close()
		for range n {
			statuses = append(statuses, call(t, api.Transport(), "", 1).StatusCode)
		}
		return statuses, api.Stats()
	}
	s1, st := run(1)
	if st.Overloaded < n/4-60 || st.Overloaded > n/4+60 || st.Accepted+st.Overloaded != n {
		t.Errorf("Overload 0.25 of %d: Accepted %d, Overloaded %d", n, st.Accepted, st.Overloaded)
	}
	var errs []int
	for _, s := range s1 {
		if s != 200 {
			errs = append(errs, s)
		}
	}
	for i, s := range errs {
		if want := []int{503, 529}[i%2]; s != want {
			t.Fatalf("overload answer %d is %d, want %d (alternating 503, 529)", i, s, want)
		}
	}
	if s2, _ := run(1); !cmp.Equal(s1, s2) {
		t.Error("same Seed, different answers")
	}
	if s3, _ := run(2); cmp.Equal(s1, s3) {
		t.Error("different Seed, same answers")
	}
}

func TestAPIDialects(t *testing.T) {
	// At the synctest epoch, with buckets of 4 requests at 2/s and 100
	// tokens at 100/s: A is the answer to a first request costing 30, B the
	// 429 after three more requests costing 1 each.
	epoch := time.Date(2000, 1, 1, 0, 0, 0, 0, time.UTC)
	tests := []struct {
		dialect Dialect
		a, b    http.Header
	}{
		{None, http.Header{}, http.Header{}},
		{OpenAI, http.Header{
			"X-Ratelimit-Limit-Requests":     {"4"},
			"X-Ratelimit-Remaining-Requests": {"3"},
			"X-Ratelimit-Reset-Requests":     {"500ms"},
			"X-Ratelimit-Limit-Tokens":       {"100"},
			"X-Ratelimit-Remaining-Tokens":   {"70"},
			"X-Ratelimit-Reset-Tokens":       {"300ms"},
		}, http.Header{
			"X-Ratelimit-Limit-Requests":     {"4"},
			"X-Ratelimit-Remaining-Requests": {"0"},
			"X-Ratelimit-Reset-Requests":     {"2s"},
			"X-Ratelimit-Limit-Tokens":       {"100"},
			"X-Ratelimit-Remaining-Tokens":   {"67"},
			"X-Ratelimit-Reset-Tokens":       {"330ms"},
		}},
		{Anthropic, http.Header{
			"Anthropic-Ratelimit-Requests-Limit":     {"4"},
			"Anthropic-Ratelimit-Requests-Remaining": {"3"},
			"Anthropic-Ratelimit-Requests-Reset":     {"2000-01-01T00:00:01Z"},
			"Anthropic-Ratelimit-Tokens-Limit":       {"100"},
			"Anthropic-Ratelimit-Tokens-Remaining":   {"70"},
			"Anthropic-Ratelimit-Tokens-Reset":       {"2000-01-01T00:00:01Z"},
		}, http.Header{
			"Anthropic-Ratelimit-Requests-Limit":     {"4"},
			"Anthropic-Ratelimit-Requests-Remaining": {"0"},
			"Anthropic-Ratelimit-Requests-Reset":     {"2000-01-01T00:00:02Z"},
			"Anthropic-Ratelimit-Tokens-Limit":       {"100"},
			"Anthropic-Ratelimit-Tokens-Remaining":   {"67"},
			"Anthropic-Ratelimit-Tokens-Reset":       {"2000-01-01T00:00:01Z"},
		}},
		{IETF, http.Header{
			"Ratelimit-Policy": {`"default";q=4;w=2, "tokens";q=100;w=1`},
			"Ratelimit":        {`"default";r=3;t=1, "tokens";r=70;t=1`},
		}, http.Header{
			"Ratelimit-Policy": {`"default";q=4;w=2, "tokens";q=100;w=1`},
			"Ratelimit":        {`"default";r=0;t=1, "tokens";r=67;t=1`},
		}},
		{Legacy, http.Header{
			"Ratelimit-Limit":     {"4"},
			"Ratelimit-Remaining": {"3"},
			"Ratelimit-Reset":     {"1"},
		}, http.Header{
			"Ratelimit-Limit":     {"4"},
			"Ratelimit-Remaining": {"0"},
			"Ratelimit-Reset":     {"1"},
		}},
		{GitHub, http.Header{
			"X-Ratelimit-Limit":     {"4"},
			"X-Ratelimit-Remaining": {"3"},
			"X-Ratelimit-Used":      {"1"},
			"X-Ratelimit-Reset":     {strconv.FormatInt(epoch.Unix()+1, 10)},
			"X-Ratelimit-Resource":  {"core"},
		}, http.Header{
			"X-Ratelimit-Limit":     {"4"},
			"X-Ratelimit-Remaining": {"0"},
			"X-Ratelimit-Used":      {"4"},
			"X-Ratelimit-Reset":     {strconv.FormatInt(epoch.Unix()+1, 10)},
			"X-Ratelimit-Resource":  {"core"},
		}},
	}
	// rateHeaders is h without the fields every answer has.
	rateHeaders := func(h http.Header) http.Header {
		h = h.Clone()
		h.Del("Content-Type")
		h.Del("Retry-After")
		return h
	}
	for _, tt := range tests {
		t.Run(tt.dialect.String(), func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				if !time.Now().Equal(epoch) {
					t.Fatalf("synctest epoch is %v", time.Now())
				}
				api := NewAPI(Config{Rate: 2, Burst: 4, TokenRate: 100, TokenBurst: 100, Cost: costFromHeader, Dialect: tt.dialect})
				defer api.Close()
				rt := api.Transport()
				a := call(t, rt, "", 30)
				if diff := cmp.Diff(tt.a, rateHeaders(a.Header)); diff != "" {
					t.Errorf("200 headers (-want +got):\n%s", diff)
				}
				for range 3 {
					call(t, rt, "", 1)
				}
				b := call(t, rt, "", 1)
				if b.StatusCode != 429 || b.Header.Get("Retry-After") != "1" {
					t.Errorf("fifth request: status %d, Retry-After %q; want 429, 1", b.StatusCode, b.Header.Get("Retry-After"))
				}
				if diff := cmp.Diff(tt.b, rateHeaders(b.Header)); diff != "" {
					t.Errorf("429 headers (-want +got):\n%s", diff)
				}
			})
		})
	}
}

func TestAPIResetIsConsistent(t *testing.T) {
	// Waiting the announced reset refills the bucket completely.
	synctest.Test(t, func(t *testing.T) {
		api := NewAPI(Config{Rate: 3, Burst: 7, Dialect: OpenAI})
		defer api.Close()
		rt := api.Transport()
		for range 5 {
			call(t, rt, "", 1)
		}
		time.Sleep(123 * time.Millisecond)
		h := call(t, rt, "", 1).Header
		reset, err := time.ParseDuration(h.Get("X-Ratelimit-Reset-Requests"))
		if err != nil {
			t.Fatal(err)
		}
		time.Sleep(reset)
		if got := call(t, rt, "", 1).Header.Get("X-Ratelimit-Remaining-Requests"); got != "6" {
			t.Errorf("after waiting reset %v, remaining = %s, want 6 (full bucket less this request)", reset, got)
		}
	})
}

func TestAPIPeakConcurrency(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		api := NewAPI(Config{Latency: time.Second})
		defer api.Close()
		rt := api.Transport()
		var wg sync.WaitGroup
		for range 8 {
			wg.Go(func() { call(t, rt, "", 1) })
		}
		wg.Wait()
		for range 3 {
			call(t, rt, "", 1)
		}
		if st := api.Stats(); st.PeakConcurrency != 8 || st.Accepted != 11 {
			t.Errorf("PeakConcurrency %d, Accepted %d; want 8, 11", st.PeakConcurrency, st.Accepted)
		}
		if time.Since(time.Date(2000, 1, 1, 0, 0, 0, 0, time.UTC)) != 4*time.Second {
			t.Errorf("8 parallel and 3 serial requests of 1s took %v, want 4s", time.Since(time.Date(2000, 1, 1, 0, 0, 0, 0, time.UTC)))
		}
	})
}

func TestAPILatencyHonoursContext(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		api := NewAPI(Config{Latency: time.Minute})
		defer api.Close()
		ctx, cancel := context.WithTimeout(t.Context(), time.Second)
		defer cancel()
		_, err := api.Transport().RoundTrip(get(t, "http://api.test/").WithContext(ctx))
		if !errors.Is(err, context.DeadlineExceeded) {
			t.Errorf("err = %v, want deadline exceeded", err)
		}
	})
}

func TestAPIOverLoopback(t *testing.T) {
	api := NewAPI(Config{Rate: 0.01, Burst: 2, Dialect: Legacy})
	defer api.Close()
	client := api.Client()
	var got []answer
	for range 3 {
		resp, err := client.Get(api.URL() + "/v1/x")
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		got = append(got, answer{resp.StatusCode, resp.Header.Get("Content-Type"), resp.Header.Get("Retry-After"), resp.Header.Get("RateLimit-Remaining")})
		_ = body
	}
	want := []answer{
		{200, "application/json", "", "1"},
		{200, "application/json", "", "0"},
		{429, "application/json", "100", "0"},
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("answers (-want +got):\n%s", diff)
	}
	if api.Conns() != 1 {
		t.Errorf("Conns() = %d, want 1", api.Conns())
	}
}

// The same requests get the same answers from a socket and from memory:
// the rules read the clock at each request and keep nothing per connection.
func TestAPISameOverLoopbackAndInMemory(t *testing.T) {
	cfg := Config{
		Window: time.Hour, Quota: 2, Dialect: Anthropic, PerKey: true, RetryAfter: RetryAfterMillis,
		Models: map[string]Limits{"small": {Window: time.Hour, Quota: 1}},
	}
	type row struct {
		Status              int
		Remaining, HasRetry string
	}
	send := func(rt http.RoundTripper, base string) []row {
		var rows []row
		for _, r := range []struct{ key, body string }{
			{"a", `{"model":"big"}`}, {"a", `{"model":"big"}`}, {"a", `{"model":"big"}`},
			{"b", `{"model":"big"}`}, {"a", `{"model":"small"}`}, {"a", `{"model":"small"}`},
		} {
			req, _ := http.NewRequest(http.MethodPost, base+"/v1/messages", strings.NewReader(r.body))
			req.Header.Set("X-Api-Key", r.key)
			resp, err := rt.RoundTrip(req)
			if err != nil {
				t.Fatal(err)
			}
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			rows = append(rows, row{resp.StatusCode, resp.Header.Get("Anthropic-Ratelimit-Requests-Remaining"), strconv.FormatBool(resp.Header.Get("Retry-After-Ms") != "")})
		}
		return rows
	}
	mem := NewAPI(cfg)
	defer mem.Close()
	net := NewAPI(cfg)
	defer net.Close()
	inMemory := send(mem.Transport(), "http://api.test")
	overLoopback := send(net.Client().Transport, net.URL())
	want := []row{{200, "1", "false"}, {200, "0", "false"}, {429, "0", "true"}, {200, "1", "false"}, {200, "0", "false"}, {429, "0", "true"}}
	if diff := cmp.Diff(want, inMemory); diff != "" {
		t.Errorf("in memory (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff(inMemory, overLoopback); diff != "" {
		t.Errorf("over loopback vs in memory (-memory +loopback):\n%s", diff)
	}
	wantKeys := map[string]Counts{
		"a": {Requests: 5, Accepted: 3, Refused: 2, PeakInFlight: 1},
		"b": {Requests: 1, Accepted: 1, PeakInFlight: 1},
	}
	for _, api := range []*API{mem, net} {
		if diff := cmp.Diff(wantKeys, api.Stats().Keys); diff != "" {
			t.Errorf("Stats.Keys (-want +got):\n%s", diff)
		}
	}
}
