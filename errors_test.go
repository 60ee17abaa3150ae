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

func TestRetryErrorMessage(t *testing.T) {
	disk := errors.New("disk on fire")
	reset := errors.New("connection reset")
	tests := []struct {
		err  *RetryError
		want string
	}{
		{&RetryError{Err: disk}, "pacehttp: before the first attempt: disk on fire"},
		{&RetryError{Attempts: 1, Err: reset}, "pacehttp: attempt 1: connection reset"},
		{&RetryError{Attempts: 3, Err: reset, Cause: ErrAttemptsExhausted}, "pacehttp: gave up after attempt 3 (attempts exhausted): connection reset"},
	}
	for _, tt := range tests {
		if got := tt.err.Error(); got != tt.want {
			t.Errorf("Error() = %q, want %q", got, tt.want)
		}
	}
}
