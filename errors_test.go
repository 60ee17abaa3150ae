package pacehttp

import (
	"context"
	"errors"
	"net"
	"syscall"
	"testing"
	"testing/synctest"
)

func TestTransportErrorWrapped(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		reset := &net.OpError{Op: "read", Net: "tcp", Err: syscall.ECONNRESET}
		s := &script{answers: []answer{{err: reset}}}
		_, err := Chain(s, Retry(WithMaxAttempts(3))).RoundTrip(newRequest(t, context.Background(), "GET", nil))
		var rerr *RetryError
		if !errors.As(err, &rerr) || rerr.Attempts != 3 {
			t.Fatalf("err = %v, want a *RetryError after 3 attempts", err)
		}
		if !errors.Is(err, syscall.ECONNRESET) || !errors.Is(err, ErrAttemptsExhausted) {
			t.Errorf("err = %v, want it to match ECONNRESET and ErrAttemptsExhausted", err)
		}
	})
}
