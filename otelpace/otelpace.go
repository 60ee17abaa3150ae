// Package otelpace records pacehttp's events as OpenTelemetry metrics, and
// as events on the request's span when there is one.
package otelpace

import (
	"context"

	"github.com/pacehttp/pacehttp"
	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"
	"go.opentelemetry.io/otel/trace"
)

// ScopeName is the instrumentation scope of the meter otelpace uses.
const ScopeName = "github.com/pacehttp/pacehttp/otelpace"

// Attribute keys. Values come only from an Event's fields that never hold
// credentials (the host, the hashed partition, reason and status); never
// from the URL's path or query, nor from headers.
const (
	KeyKind      = attribute.Key("pacehttp.kind")
	KeyReason    = attribute.Key("pacehttp.reason")
	KeyStatus    = attribute.Key("http.response.status_code")
	KeyPartition = attribute.Key("pacehttp.partition")
	KeyHost      = attribute.Key("server.address")
	KeyAttempt   = attribute.Key("pacehttp.attempt")
	KeyWait      = attribute.Key("pacehttp.wait_seconds")
	KeyRate      = attribute.Key("pacehttp.rate")
)

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
//   - pacehttp.attempts: attempts sent, by host;
//   - pacehttp.retries: retries, by host, reason and status;
//   - pacehttp.give_ups: requests given up, by host, reason and status,
//     among them those that ran out of retry budget
//     (reason "retry budget exhausted");
//   - pacehttp.cool_downs: partitions closed by a server hint, by host,
//     partition, reason and status;
//   - pacehttp.pacer.wait and pacehttp.backoff.wait: seconds spent held by
//     the pacer and waiting before a retry, histograms by host;
//   - pacehttp.rate: the adaptive pacer's current request rate per
//     second, a gauge by host and partition.
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
		metric.WithDescription("Requests given up after a failed attempt.")); err != nil {
		return nil, err
	}
	if ins.coolDowns, err = m.Int64Counter("pacehttp.cool_downs", metric.WithUnit("{cool-down}"),
		metric.WithDescription("Partitions paused by a server hint.")); err != nil {
		return nil, err
	}
	if ins.paceWait, err = m.Float64Histogram("pacehttp.pacer.wait", metric.WithUnit("s"),
		metric.WithDescription("Time requests were held by the pacer.")); err != nil {
		return nil, err
	}
	if ins.backoff, err = m.Float64Histogram("pacehttp.backoff.wait", metric.WithUnit("s"),
		metric.WithDescription("Time waited before a retry.")); err != nil {
		return nil, err
	}
	if ins.rate, err = m.Float64Gauge("pacehttp.rate", metric.WithUnit("{request}/s"),
		metric.WithDescription("The adaptive pacer's request rate of a partition.")); err != nil {
		return nil, err
	}
	return ins.record, nil
}

func (ins *instruments) record(e pacehttp.Event) {
	ctx, host := context.Background(), ""
	if e.Request != nil {
		ctx, host = e.Request.Context(), e.Request.URL.Host
	}
	hostAttr := KeyHost.String(host)
	switch e.Kind {
	case pacehttp.EventAttempt:
		ins.attempts.Add(ctx, 1, metric.WithAttributes(hostAttr))
	case pacehttp.EventRetry:
		ins.retries.Add(ctx, 1, metric.WithAttributes(outcome(hostAttr, e)...))
		ins.backoff.Record(ctx, e.Wait.Seconds(), metric.WithAttributes(hostAttr))
	case pacehttp.EventGiveUp:
		ins.giveUps.Add(ctx, 1, metric.WithAttributes(outcome(hostAttr, e)...))
	case pacehttp.EventPaced:
		ins.paceWait.Record(ctx, e.Wait.Seconds(), metric.WithAttributes(hostAttr))
	case pacehttp.EventCoolDown:
		ins.coolDowns.Add(ctx, 1, metric.WithAttributes(append(outcome(hostAttr, e), KeyPartition.String(e.Partition))...))
	case pacehttp.EventRateChange:
		ins.rate.Record(ctx, e.Rate, metric.WithAttributes(hostAttr, KeyPartition.String(e.Partition)))
	}

	span := trace.SpanFromContext(ctx)
	if !span.IsRecording() {
		return
	}
	attrs := []attribute.KeyValue{KeyKind.String(e.Kind.String()), KeyAttempt.Int(e.Attempt), hostAttr}
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

// outcome returns the attributes of an attempt's outcome: host, reason,
// and status when there was a response.
func outcome(host attribute.KeyValue, e pacehttp.Event) []attribute.KeyValue {
	attrs := []attribute.KeyValue{host, KeyReason.String(e.Reason)}
	if e.StatusCode != 0 {
		attrs = append(attrs, KeyStatus.Int(e.StatusCode))
	}
	return attrs
}
