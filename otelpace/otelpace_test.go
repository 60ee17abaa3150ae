package otelpace_test

import (
	"context"
	"net/http"
	"slices"
	"strings"
	"testing"
	"testing/synctest"
	"time"

	"github.com/pacehttp/pacehttp"
	pacetest "github.com/pacehttp/pacehttp/httptest_helpers"
	"github.com/pacehttp/pacehttp/otelpace"
	"go.opentelemetry.io/otel/attribute"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"
	"go.opentelemetry.io/otel/sdk/metric/metricdata/metricdatatest"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
)

// waitBuckets are the bucket boundaries both wait histograms must have, in
// seconds (not the SDK's millisecond defaults).
var waitBuckets = []float64{0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300}

// collect reads every metric of otelpace's scope from r, by name.
func collect(t *testing.T, r *sdkmetric.ManualReader) map[string]metricdata.Metrics {
	t.Helper()
	var rm metricdata.ResourceMetrics
	if err := r.Collect(context.Background(), &rm); err != nil {
		t.Fatal(err)
	}
	got := map[string]metricdata.Metrics{}
	for _, sm := range rm.ScopeMetrics {
		if sm.Scope.Name != otelpace.ScopeName {
			t.Errorf("scope %q, want %q", sm.Scope.Name, otelpace.ScopeName)
		}
		for _, m := range sm.Metrics {
			got[m.Name] = m
		}
	}
	return got
}

func counter(name, desc, unit string, points ...metricdata.DataPoint[int64]) metricdata.Metrics {
	return metricdata.Metrics{Name: name, Description: desc, Unit: unit, Data: metricdata.Sum[int64]{
		Temporality: metricdata.CumulativeTemporality, IsMonotonic: true, DataPoints: points,
	}}
}

func point(v int64, attrs ...attribute.KeyValue) metricdata.DataPoint[int64] {
	return metricdata.DataPoint[int64]{Attributes: attribute.NewSet(attrs...), Value: v}
}

// TestMetrics runs a scripted API through pacehttp in a synctest bubble
// (its Retry-After waits take no real time) and checks, with the SDK's
// ManualReader, every instrument: name, description, unit, kind, the
// attribute set of every data point, the counts, and the histograms'
// bucket boundaries.
func TestMetrics(t *testing.T) { synctest.Test(t, testMetrics) }

func testMetrics(t *testing.T) {
	api := pacetest.NewScripted(
		pacetest.TooManyRequests("1"), // request 1: retried after the 1s asked
		pacetest.Status(503),          // retried after backoff
		pacetest.OK(`{}`),
		pacetest.TooManyRequests("1"), // request 2: one attempt only, given up
	)
	defer api.Close()
	reader := sdkmetric.NewManualReader()
	hook, err := otelpace.NewHook(sdkmetric.NewMeterProvider(sdkmetric.WithReader(reader)))
	if err != nil {
		t.Fatal(err)
	}
	send := func(rt http.RoundTripper) {
		req, _ := http.NewRequest(http.MethodPost, "http://api.test:8443/v1/chat?key=SECRET-QUERY", strings.NewReader(`{"model":"m"}`))
		req.Header.Set("Authorization", "Bearer SECRET-HEADER")
		resp, err := rt.RoundTrip(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
	}
	// Under one secret, both transports name the partition alike.
	secret := pacehttp.WithPartitionSecret([]byte("test"))
	send(pacehttp.New(api.Transport(), pacehttp.WithHook(hook), secret, pacehttp.WithBackoff(time.Millisecond, 2*time.Millisecond)))
	send(pacehttp.New(api.Transport(), pacehttp.WithHook(hook), secret, pacehttp.WithMaxAttempts(1)))

	got := collect(t, reader)
	server := []attribute.KeyValue{attribute.String("server.address", "api.test"), attribute.Int("server.port", 8443)}
	post := append(slices.Clone(server), attribute.String("http.request.method", "POST"))
	failed := func(reason string, status int) []attribute.KeyValue {
		return append(slices.Clone(post), attribute.String("pacehttp.reason", reason),
			attribute.Int("http.response.status_code", status), attribute.String("error.type", itoa(status)))
	}
	partition := partitionOf(t, got["pacehttp.cool_downs"])

	for _, want := range []metricdata.Metrics{
		counter("pacehttp.attempts", "Attempts sent to the server.", "{attempt}", point(4, post...)),
		counter("pacehttp.retries", "Attempts that failed and will be repeated.", "{retry}",
			point(1, failed("status 429", 429)...), point(1, failed("status 503", 503)...)),
		counter("pacehttp.give_ups", "Requests given up, after a failed attempt or refused by the pacer.", "{request}",
			point(1, failed("status 429: attempts exhausted", 429)...)),
		counter("pacehttp.cool_downs", "Partitions paused by a server hint.", "{cool-down}",
			point(2, append(slices.Clone(server), attribute.String("pacehttp.partition", partition),
				attribute.String("pacehttp.reason", "status 429"), attribute.Int("http.response.status_code", 429))...)),
	} {
		metricdatatest.AssertEqual(t, want, got[want.Name], metricdatatest.IgnoreTimestamp(), metricdatatest.IgnoreExemplars())
	}

	// The waits vary with jitter: their values are not compared, their
	// counts, attributes and buckets are.
	for _, want := range []struct {
		name, desc string
		min        uint64
	}{
		{"pacehttp.backoff.wait", "Time waited before a retry.", 2},
		{"pacehttp.pacer.wait", "Time requests were held by the pacer.", 2},
	} {
		m := got[want.name]
		if m.Description != want.desc || m.Unit != "s" {
			t.Errorf("%s: description %q, unit %q; want %q, s", want.name, m.Description, m.Unit, want.desc)
		}
		h, ok := m.Data.(metricdata.Histogram[float64])
		if !ok || len(h.DataPoints) != 1 {
			t.Fatalf("%s: data %#v, want one histogram point", want.name, m.Data)
		}
		p := h.DataPoints[0]
		if !p.Attributes.Equals(ptr(attribute.NewSet(server...))) {
			t.Errorf("%s: attributes %v, want %v", want.name, p.Attributes.ToSlice(), server)
		}
		if !slices.Equal(p.Bounds, waitBuckets) {
			t.Errorf("%s: bounds %v, want %v", want.name, p.Bounds, waitBuckets)
		}
		if p.Count != want.min {
			t.Errorf("%s: %d values, want %d", want.name, p.Count, want.min)
		}
		switch want.name {
		case "pacehttp.backoff.wait":
			// The 429 and the 503 are throttles: the pacer holds their
			// retries at the partition's gate, the retry layer does not
			// wait for them.
			if p.BucketCounts[0] != 2 {
				t.Errorf("%s: bucket counts %v, want two waits of 0 in the first", want.name, p.BucketCounts)
			}
		case "pacehttp.pacer.wait":
			// The gate held each retry about a second: (0.5, 1] or
			// (1, 2.5], not the first bucket, as under millisecond
			// boundaries.
			if p.BucketCounts[7]+p.BucketCounts[8] != 2 {
				t.Errorf("%s: bucket counts %v, want the two 1s holds in (0.5, 2.5]", want.name, p.BucketCounts)
			}
		}
	}

	rate := got["pacehttp.rate"]
	g, ok := rate.Data.(metricdata.Gauge[float64])
	if rate.Unit != "{request}/s" || rate.Description != "The request rate the pacer allows a partition." || !ok || len(g.DataPoints) == 0 {
		t.Fatalf("pacehttp.rate: %#v", rate)
	}
	wantRate := attribute.NewSet(append(slices.Clone(server), attribute.String("pacehttp.partition", partition))...)
	for _, p := range g.DataPoints {
		if !p.Attributes.Equals(&wantRate) || p.Value <= 0 {
			t.Errorf("pacehttp.rate: point %v = %v, want attributes %v and a positive rate", p.Attributes.ToSlice(), p.Value, wantRate.ToSlice())
		}
	}
	if len(got) != 7 {
		t.Errorf("%d instruments recorded, want 7", len(got))
	}
}

// partitionOf returns the partition attribute of a metric's first point,
// and checks that it hides the credential it stands for.
func partitionOf(t *testing.T, m metricdata.Metrics) string {
	t.Helper()
	sum, ok := m.Data.(metricdata.Sum[int64])
	if !ok || len(sum.DataPoints) == 0 {
		t.Fatalf("%s: no data points", m.Name)
	}
	v, _ := sum.DataPoints[0].Attributes.Value("pacehttp.partition")
	if p := v.Emit(); p == "" || strings.Contains(p, "SECRET") {
		t.Fatalf("partition %q: empty or holding the credential", p)
	}
	return v.Emit()
}

// TestRefusedRequestIsAGiveUp feeds the hook what the pacer reports of a
// request it refused to hold (a give-up whose Err is a *pacehttp.WaitError,
// with no attempt before it) and a pacer event, which has no attempt
// number: the refusal counts as a give-up, never as an attempt, and the
// pacer event's span event carries no attempt attribute.
func TestRefusedRequestIsAGiveUp(t *testing.T) {
	reader := sdkmetric.NewManualReader()
	hook, err := otelpace.NewHook(sdkmetric.NewMeterProvider(sdkmetric.WithReader(reader)))
	if err != nil {
		t.Fatal(err)
	}
	spans := tracetest.NewSpanRecorder()
	ctx, span := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(spans)).Tracer("test").Start(context.Background(), "call")
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, "https://api.test/v1/models", nil)

	hook(pacehttp.Event{Kind: pacehttp.EventRateChange, Request: req, Rate: 2, Partition: "p1"})
	hook(pacehttp.Event{Kind: pacehttp.EventGiveUp, Request: req, Attempt: 1,
		Reason: "pacer refused: wait exceeds max wait", Wait: time.Minute,
		Err: &pacehttp.WaitError{Wait: time.Minute, Limit: 30 * time.Second, Partition: "p1"}})
	span.End()

	got := collect(t, reader)
	if _, ok := got["pacehttp.attempts"]; ok {
		t.Errorf("pacehttp.attempts recorded %v for a request never sent", got["pacehttp.attempts"].Data)
	}
	metricdatatest.AssertEqual(t,
		counter("pacehttp.give_ups", "Requests given up, after a failed attempt or refused by the pacer.", "{request}",
			point(1, attribute.String("server.address", "api.test"), attribute.Int("server.port", 443),
				attribute.String("http.request.method", "GET"),
				attribute.String("pacehttp.reason", "pacer refused: wait exceeds max wait"),
				attribute.String("error.type", "*pacehttp.WaitError"))),
		got["pacehttp.give_ups"], metricdatatest.IgnoreTimestamp(), metricdatatest.IgnoreExemplars())

	events := spans.Ended()[0].Events()
	if len(events) != 2 || events[0].Name != "pacehttp.rate-change" {
		t.Fatalf("span events %v, want rate-change and give-up", events)
	}
	for _, a := range events[0].Attributes {
		if a.Key == otelpace.KeyAttempt {
			t.Errorf("rate-change span event carries %v; a pacer event belongs to no attempt", a)
		}
	}
}

// TestSpanEventsHoldNoCredential sends a key in the query and in a header
// and checks every attribute value recorded, in metrics and on the span.
func TestSpanEventsHoldNoCredential(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		api := pacetest.NewScripted(pacetest.TooManyRequests("1"), pacetest.OK(`{}`))
		defer api.Close()
		reader := sdkmetric.NewManualReader()
		hook, err := otelpace.NewHook(sdkmetric.NewMeterProvider(sdkmetric.WithReader(reader)))
		if err != nil {
			t.Fatal(err)
		}
		spans := tracetest.NewSpanRecorder()
		ctx, span := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(spans)).Tracer("test").Start(context.Background(), "call")
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, "http://api.test/v1/bot123456:SECRET-PATH/chat?api_key=SECRET-QUERY", nil)
		req.Header.Set("Authorization", "Bearer SECRET-HEADER")
		resp, err := pacehttp.New(api.Transport(), pacehttp.WithHook(hook)).RoundTrip(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		span.End()

		var values []string
		for _, m := range collect(t, reader) {
			metricdatatest.AssertHasAttributes(t, m, attribute.String("server.address", "api.test"))
			values = append(values, attributeValues(m.Data)...)
		}
		var names []string
		for _, ev := range spans.Ended()[0].Events() {
			names = append(names, ev.Name)
			for _, a := range ev.Attributes {
				values = append(values, a.Value.Emit())
			}
		}
		for _, want := range []string{"pacehttp.attempt", "pacehttp.retry", "pacehttp.cool-down"} {
			if !slices.Contains(names, want) {
				t.Errorf("span events %q lack %q", names, want)
			}
		}
		for _, v := range values {
			if strings.Contains(v, "SECRET") || strings.Contains(v, "/v1/") {
				t.Errorf("attribute value %q holds the URL's path or a credential", v)
			}
		}
	})
}

func attributeValues(data metricdata.Aggregation) []string {
	var sets []attribute.Set
	switch d := data.(type) {
	case metricdata.Sum[int64]:
		for _, p := range d.DataPoints {
			sets = append(sets, p.Attributes)
		}
	case metricdata.Histogram[float64]:
		for _, p := range d.DataPoints {
			sets = append(sets, p.Attributes)
		}
	case metricdata.Gauge[float64]:
		for _, p := range d.DataPoints {
			sets = append(sets, p.Attributes)
		}
	}
	var values []string
	for _, s := range sets {
		for _, a := range s.ToSlice() {
			values = append(values, a.Value.Emit())
		}
	}
	return values
}

func itoa(n int) string { return attribute.IntValue(n).Emit() }

func ptr[T any](v T) *T { return &v }
