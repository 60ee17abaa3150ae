// Package pacetest provides fake rate-limited HTTP APIs for testing clients
// that pace and retry requests, and a harness that measures such clients
// against them. Its import path is
// github.com/pacehttp/pacehttp/httptest_helpers; its package name is pacetest.
//
// There are two fakes, both shaped like net/http/httptest.Server: a
// constructor, URL, Client, Close, and counters a test can assert on.
//
//   - Scripted replays a fixed sequence of answers (a 429, then a 200, a
//     slow stream, a dropped connection) and records every request.
//   - API enforces the limits of a Config, the way real APIs do: a token
//     bucket of requests, fixed or sliding window quotas, a token bucket of
//     tokens, a cap on requests in flight, limits per credential and per
//     model, limits that change on a schedule, spells of overload and a
//     penalty box. Its refusals announce their wait in any of the usual
//     formats (RetryAfter) and carry the rate-limit headers of a chosen
//     vendor (Dialect).
//
// Each fake can be used over real loopback sockets (URL, Client) or entirely
// in memory (Transport, Handler). The listener opens only on the first call
// to URL or Client, so a fake used through Transport opens no socket at all.
// That matters under testing/synctest: a goroutine blocked on a real socket
// is not durably blocked, so the fake clock would never advance. Through
// Transport, every wait in a fake (Delay, Latency, stream intervals) runs on
// the bubble's clock, and the limits read time.Now at each request and start
// no goroutine, so runs are exactly reproducible, and behave the same over
// a socket.
//
// The harness: a Scenario is a server's Config and the work clients must get
// through it; Scenarios lists the matrix the project holds its pacer to.
// Scenario.Bound computes the physical bound, what a client that knows the
// server's rules could achieve, by running the API's own rules ahead of
// time. Runner.Run drives clients built by the caller through a scenario,
// in memory or over loopback, and returns the figures that say how close
// they came: time over the bound, 429s, failures, latency added, adaptation
// to limit changes, sharing of one key, politeness. NaiveRetry is the retry
// loop every client should beat.
package pacetest
