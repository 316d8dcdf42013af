package fastsse

import (
	"fmt"
	"strings"
	"testing"
)

// Helpers for the Group and replay tests that look at what lands in a
// queue, through unexported names; the tests over the network are in
// package fastsse_test, on internal/ssetest. Every top-level name starts
// with grp so as not to clash with other test files of the package.

// grpHandler is the Handler[int] of the endpoints whose bare Conns these
// tests use; no stream runs its callbacks but HandleNotify, which sends
// Event{Data: fmt.Sprint(msg)}.
type grpHandler struct{}

func (h *grpHandler) Init(any, string, *Request) InitResult[int] { return Open(0) }

func (h *grpHandler) HandleNotify(msg any, n int) Result[int] {
	return Send(Event{Data: fmt.Sprint(msg)}, n+1)
}

func (h *grpHandler) HandleInfo(_ any, n int) Result[int]     { return NoSend(n) }
func (h *grpHandler) HandleError(_ Event, _ error, n int) int { return n }
func (h *grpHandler) Terminate(_ error, _ int)                {}

// grpBareConn returns a Conn of ep's with no stream behind it: what a stream
// holds, minus the network, for Group tests that look only at what lands in
// the queue. The test drains it with grpTake; cleanup ends it as a stream
// would.
func grpBareConn(tb testing.TB, ep *Endpoint) *Conn {
	c := newConn(ep.core)
	c.t = bareTransport{}
	tb.Cleanup(func() { grpEnd(c, ErrStopped) })
	return c
}

// bareTransport is a bare Conn's transport: nowhere.
type bareTransport struct{}

func (bareTransport) wake()               {}
func (bareTransport) send([]byte) error   { return errPeerClosed }
func (bareTransport) finish(bool)         {}
func (bareTransport) stalledSince() int64 { return 0 }
func (bareTransport) gone() bool          { return false }
func (bareTransport) evict()              {}
func (bareTransport) bound()              {}
func (bareTransport) name() string        { return "bare" }

// grpEnd ends a bare Conn the way a stream ends: no more messages, then the
// end hooks (Group.Leave) and Done.
func grpEnd(c *Conn, reason error) {
	if c.markEnded(reason) {
		c.finish()
	}
}

// grpTake drains c's queue as its stream's goroutine would and returns the
// items, oldest first.
func grpTake(c *Conn) []item {
	q, _, _, _ := c.take()
	if q == nil {
		return nil
	}
	var its []item
	for q.n > 0 {
		its = append(its, q.pop())
	}
	c.core.rings.put(q)
	return its
}

// grpFrameIDs parses the frames among its as a client would and returns the
// events' ids, "|"-joined.
func grpFrameIDs(its []item) string {
	var b []byte
	for _, it := range its {
		if it.kind == kindFrame {
			b = append(b, it.frame.Bytes()...)
		}
	}
	var ids []string
	for _, ev := range parseAll(b) {
		ids = append(ids, ev.ID)
	}
	return strings.Join(ids, "|")
}
