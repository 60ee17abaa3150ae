// Package pacetest provides fake rate-limited HTTP APIs for testing clients
// that pace and retry requests. Its import path is
// github.com/pacehttp/pacehttp/httptest_helpers; its package name is pacetest.
//
// There are two fakes, both shaped like net/http/httptest.Server: a
// constructor, URL, Client, Close, and counters a test can assert on.
//
//   - Scripted replays a fixed sequence of answers (a 429, then a 200, a
//     slow stream, a dropped connection) and records every request.
//   - API enforces a token-bucket limit on requests and, optionally, on
//     tokens, and answers with the rate-limit headers of a chosen vendor.
//
// Each fake can be used over real loopback sockets (URL, Client) or entirely
// in memory (Transport, Handler). The listener opens only on the first call
// to URL or Client, so a fake used through Transport opens no socket at all.
// That matters under testing/synctest: a goroutine blocked on a real socket
// is not durably blocked, so the fake clock would never advance. Through
// Transport, every wait in a fake (Delay, Latency, stream intervals) runs on
// the bubble's clock, and the limiter reads time.Now at each request, so
// runs are exactly reproducible.
package pacetest
