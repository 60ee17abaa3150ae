// Package otelpace records pacehttp's events as OpenTelemetry metrics, and
// as events on the request's span when there is one.
//
// Attributes follow the OpenTelemetry semantic conventions for HTTP clients
// where they apply: server.address holds the host alone and server.port
// the port (the scheme's default when the URL names none),
// http.request.method the method, http.response.status_code the status,
// and error.type the status or the error's type when an attempt failed.
// The wait histograms are in seconds, with bucket boundaries for waits
// from milliseconds to minutes.
package otelpace

import (
	"context"
	"net/http"
	"net/url"
	"strconv"

	"github.com/pacehttp/pacehttp"
	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"
	semconv "go.opentelemetry.io/otel/semconv/v1.43.0"
	"go.opentelemetry.io/otel/trace"
)

// ScopeName is the instrumentation scope of the meter otelpace uses.
const ScopeName = "github.com/pacehttp/pacehttp/otelpace"

// Attribute keys. Values come only from an Event's fields that never hold
// credentials (the URL's host and port, the method, the hashed partition,
// reason, status and error type); never from the URL's path or query, nor
// from headers.
const (
	KeyHost      = semconv.ServerAddressKey
	KeyPort      = semconv.ServerPortKey
	KeyMethod    = semconv.HTTPRequestMethodKey
	KeyStatus    = semconv.HTTPResponseStatusCodeKey
	KeyErrorType = semconv.ErrorTypeKey
	KeyReason    = attribute.Key("pacehttp.reason")
	KeyPartition = attribute.Key("pacehttp.partition")
	KeyKind      = attribute.Key("pacehttp.kind")
	KeyAttempt   = attribute.Key("pacehttp.attempt")
	KeyWait      = attribute.Key("pacehttp.wait_seconds")
	KeyRate      = attribute.Key("pacehttp.rate")
)

// waitBoundaries are the bucket boundaries, in seconds, of both wait
// histograms: the SDK's default boundaries are meant for milliseconds and
// would put every wait below 5 seconds in their first bucket. These run
// from a few milliseconds (a pacer spacing requests) to the minutes a
// server may ask for, past pacehttp's default maximum wait of 60s.
var waitBoundaries = []float64{0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300}

// instruments are the metrics a hook records.
type instruments struct {
	attempts  metric.Int64Counter
	retries   metric.Int64Counter
	giveUps   metric.Int64Counter
	coolDowns metric.Int64Counter
	paceWait  metric.Float64Histogram
	backoff   metric.Float64Histogram
	rate      metric.Float64Gauge
}

// NewHook returns a hook for pacehttp.WithHook that records, through a
// meter of mp (the global MeterProvider when nil):
//
//   - pacehttp.attempts: attempts sent to the server, by server address,
//     port and method;
//   - pacehttp.retries: failed attempts that will be repeated, by server
//     address, port, method, reason, status and error type;
//   - pacehttp.give_ups: requests given up, by the same attributes: after
//     a failed attempt, or before any when the pacer refused to hold them
//     (reason "pacer refused..."), or when the retry budget ran out
//     (reason ending in "retry budget exhausted");
//   - pacehttp.cool_downs: partitions closed by a server hint, by server
//     address, port, partition, reason and status;
//   - pacehttp.pacer.wait and pacehttp.backoff.wait: seconds requests were
//     held by the pacer and waited before a retry, histograms by server
//     address and port;
//   - pacehttp.rate: a partition's request rate per second, learned from
//     throttling or read from rate-limit headers, a gauge by server
//     address, port and partition.
//
// When the request's context carries a recording span, every event is also
// added to it as a span event named "pacehttp." + the event kind.
func NewHook(mp metric.MeterProvider) (func(pacehttp.Event), error) {
	if mp == nil {
		mp = otel.GetMeterProvider()
	}
	m := mp.Meter(ScopeName)
	var ins instruments
	var err error
	if ins.attempts, err = m.Int64Counter("pacehttp.attempts", metric.WithUnit("{attempt}"),
		metric.WithDescription("Attempts sent to the server.")); err != nil {
		return nil, err
	}
	if ins.retries, err = m.Int64Counter("pacehttp.retries", metric.WithUnit("{retry}"),
		metric.WithDescription("Attempts that failed and will be repeated.")); err != nil {
		return nil, err
	}
	if ins.giveUps, err = m.Int64Counter("pacehttp.give_ups", metric.WithUnit("{request}"),
		metric.WithDescription("Requests given up, after a failed attempt or refused by the pacer.")); err != nil {
		return nil, err
	}
	if ins.coolDowns, err = m.Int64Counter("pacehttp.cool_downs", metric.WithUnit("{cool-down}"),
		metric.WithDescription("Partitions paused by a server hint.")); err != nil {
		return nil, err
	}
	if ins.paceWait, err = m.Float64Histogram("pacehttp.pacer.wait", metric.WithUnit("s"),
		metric.WithDescription("Time requests were held by the pacer."),
		metric.WithExplicitBucketBoundaries(waitBoundaries...)); err != nil {
		return nil, err
	}
	if ins.backoff, err = m.Float64Histogram("pacehttp.backoff.wait", metric.WithUnit("s"),
		metric.WithDescription("Time waited before a retry."),
		metric.WithExplicitBucketBoundaries(waitBoundaries...)); err != nil {
		return nil, err
	}
	if ins.rate, err = m.Float64Gauge("pacehttp.rate", metric.WithUnit("{request}/s"),
		metric.WithDescription("The request rate the pacer allows a partition.")); err != nil {
		return nil, err
	}
	return ins.record, nil
}

func (ins *instruments) record(e pacehttp.Event) {
	ctx := context.Background()
	var server []attribute.KeyValue
	method := ""
	if e.Request != nil {
		ctx = e.Request.Context()
		server = serverAttrs(e.Request.URL)
		method = e.Request.Method
	}
	switch e.Kind {
	case pacehttp.EventAttempt:
		ins.attempts.Add(ctx, 1, metric.WithAttributes(append(server, methodAttr(method))...))
	case pacehttp.EventRetry:
		ins.retries.Add(ctx, 1, metric.WithAttributes(outcome(server, method, e)...))
		ins.backoff.Record(ctx, e.Wait.Seconds(), metric.WithAttributes(server...))
	case pacehttp.EventGiveUp:
		ins.giveUps.Add(ctx, 1, metric.WithAttributes(outcome(server, method, e)...))
	case pacehttp.EventPaced:
		ins.paceWait.Record(ctx, e.Wait.Seconds(), metric.WithAttributes(server...))
	case pacehttp.EventCoolDown:
		attrs := append(server, KeyPartition.String(e.Partition), KeyReason.String(e.Reason))
		if e.StatusCode != 0 {
			attrs = append(attrs, KeyStatus.Int(e.StatusCode))
		}
		ins.coolDowns.Add(ctx, 1, metric.WithAttributes(attrs...))
	case pacehttp.EventRateChange:
		ins.rate.Record(ctx, e.Rate, metric.WithAttributes(append(server, KeyPartition.String(e.Partition))...))
	}

	span := trace.SpanFromContext(ctx)
	if !span.IsRecording() {
		return
	}
	attrs := append([]attribute.KeyValue{KeyKind.String(e.Kind.String())}, server...)
	// Pacer events (paced, cool-down, rate-change) belong to no attempt
	// of the retry layer's and carry Attempt 0.
	if e.Attempt > 0 {
		attrs = append(attrs, KeyAttempt.Int(e.Attempt))
	}
	if e.Reason != "" {
		attrs = append(attrs, KeyReason.String(e.Reason))
	}
	if e.StatusCode != 0 {
		attrs = append(attrs, KeyStatus.Int(e.StatusCode))
	}
	if e.Wait != 0 {
		attrs = append(attrs, KeyWait.Float64(e.Wait.Seconds()))
	}
	if e.Partition != "" {
		attrs = append(attrs, KeyPartition.String(e.Partition))
	}
	if e.Kind == pacehttp.EventRateChange {
		attrs = append(attrs, KeyRate.Float64(e.Rate))
	}
	span.AddEvent("pacehttp."+e.Kind.String(), trace.WithAttributes(attrs...))
}

// serverAttrs returns server.address, the URL's host without its port, and
// server.port, the URL's port or the scheme's default.
func serverAttrs(u *url.URL) []attribute.KeyValue {
	attrs := make([]attribute.KeyValue, 2, 8) // room for what callers append
	attrs[0] = KeyHost.String(u.Hostname())
	port, err := strconv.Atoi(u.Port())
	if err != nil {
		port = 80
		if u.Scheme == "https" {
			port = 443
		}
	}
	attrs[1] = KeyPort.Int(port)
	return attrs
}

// methodAttr returns http.request.method: a method the HTTP RFCs define as
// is, any other as _OTHER, so that the attribute's values stay few.
func methodAttr(method string) attribute.KeyValue {
	switch method {
	case "":
		return KeyMethod.String(http.MethodGet) // net/http's meaning of ""
	case http.MethodGet, http.MethodHead, http.MethodPost, http.MethodPut, http.MethodPatch,
		http.MethodDelete, http.MethodConnect, http.MethodOptions, http.MethodTrace:
		return KeyMethod.String(method)
	}
	return semconv.HTTPRequestMethodOther
}

// outcome returns the attributes of an attempt's or a request's end: the
// server's, the method, the reason, the status when there was a response,
// and error.type: the status when it is an error, else the type of the
// error, such as *pacehttp.WaitError for a request the pacer refused.
func outcome(server []attribute.KeyValue, method string, e pacehttp.Event) []attribute.KeyValue {
	attrs := append(server, methodAttr(method), KeyReason.String(e.Reason))
	if e.StatusCode != 0 {
		attrs = append(attrs, KeyStatus.Int(e.StatusCode))
	}
	switch {
	case e.StatusCode >= 400:
		attrs = append(attrs, KeyErrorType.String(strconv.Itoa(e.StatusCode)))
	case e.Err != nil:
		attrs = append(attrs, semconv.ErrorType(e.Err))
	}
	return attrs
}
