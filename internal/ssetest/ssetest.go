// Package ssetest is the one test harness of the repository: a fasthttp
// server on 127.0.0.1:0, a raw HTTP/1.x client, a chunked decoder, an
// event-stream reader built on internal/ssespec (CR, CRLF and a BOM
// included), waiting helpers, and Transports, the table that every
// behaviour test ranges over:
//
//	for _, tr := range ssetest.Transports {
//		t.Run(tr.Name, func(t *testing.T) {
//			ep := ssetest.New(t, tr, h, opts)
//			addr := tr.Serve(t, ep)
//			c := ssetest.Dial(t, addr, "GET", "/").Start()
//			...
//		})
//	}
//
// No environment variable changes what a test asked for.
package ssetest

import (
	"testing"
	"time"

	"github.com/lasse-go/lasse/fastsse"
)

// Wait bounds every wait for something that should happen soon. It is
// generous: the tests run with -race on a 2-core machine that may be busy
// with other work. A passing test never waits that long.
const Wait = 10 * time.Second

// Eventually polls cond until it holds, failing the test after Wait.
func Eventually(tb testing.TB, cond func() bool, format string, args ...any) {
	tb.Helper()
	EventuallyWithin(tb, Wait, cond, format, args...)
}

// EventuallyWithin is Eventually with a bound of its own.
func EventuallyWithin(tb testing.TB, d time.Duration, cond func() bool, format string, args ...any) {
	tb.Helper()
	deadline := time.Now().Add(d)
	pause := 100 * time.Microsecond
	for !cond() {
		if time.Now().After(deadline) {
			tb.Fatalf("timed out after %v waiting: "+format, append([]any{d}, args...)...)
		}
		time.Sleep(pause)
		pause = min(2*pause, 20*time.Millisecond)
	}
}

// Recv receives from ch within Wait, failing the test otherwise.
func Recv[T any](tb testing.TB, ch <-chan T, what string) T {
	tb.Helper()
	select {
	case v := <-ch:
		return v
	case <-time.After(Wait):
		tb.Fatalf("timed out waiting for %s", what)
		panic("unreachable")
	}
}

// WaitDone waits until c's stream has ended and Terminate has returned.
func WaitDone(tb testing.TB, c *fastsse.Conn) {
	tb.Helper()
	select {
	case <-c.Done():
	case <-time.After(Wait):
		tb.Fatal("timed out waiting for the stream to end")
	}
}
