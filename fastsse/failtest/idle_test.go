//go:build linux

package failtest

import (
	"testing"
	"time"

	"github.com/lasse-go/lasse/fastsse"
	"github.com/lasse-go/lasse/internal/ssetest"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// defaultHeartbeat is Options.Heartbeat's default, which this test leaves
// unset (DESIGN.md: a dead client is noticed "within one heartbeat interval
// + 1 s at the defaults users run").
const defaultHeartbeat = 15 * time.Second

// TestClientLeavesIdleStreamAtUserSettings: at the settings users run, the
// default heartbeat and the examples' server (ReadTimeout 10 s,
// ssetest.ExamplesConfig), clients that leave idle streams are noticed: each
// stream ends, with ErrClientGone, within one heartbeat interval + 1 s of
// its client closing. The clients leave at once, before the read deadline
// passes: on the stream transport, the socket peek that precedes a
// heartbeat must still run once the connection's read deadline is past.
func TestClientLeavesIdleStreamAtUserSettings(t *testing.T) {
	const clients = 20
	bound := defaultHeartbeat + time.Second
	for _, tr := range ssetest.Transports {
		t.Run(tr.Name, func(t *testing.T) {
			t.Parallel() // the bound is a second wide: sharing the cores does not matter
			h := &handler{}
			ep := ssetest.New[*rec](t, tr, h, nil)
			srv := tr.ServeWith(t, ssetest.Listen(t), ep, ssetest.ExamplesConfig)
			s := &server{addr: srv.Addr, ep: ep, srv: srv}
			t.Cleanup(func() { s.stop(t) })

			conns := ssetest.DialMany(t, s.addr, "/", clients)
			ssetest.Eventually(t, func() bool { return len(h.all()) == clients }, "%d Inits", clients)
			left := nowNS()
			for _, c := range conns {
				c.Close()
			}
			// Wait past the bound, so that a late end is measured, not
			// only reported late.
			ssetest.EventuallyWithin(t, bound+10*time.Second, func() bool { return h.terms.Load() == clients },
				"%d Terminates; %d so far (Stats %+v)", clients, h.terms.Load(), ep.Stats())
			var worst time.Duration
			for _, r := range h.all() {
				took := time.Duration(r.endNS - left)
				worst = max(worst, took)
				assert.ErrorIs(t, r.reason, fastsse.ErrClientGone)
			}
			t.Logf("%d clients left at once; the last stream ended %v later (bound %v)", clients, worst.Round(time.Millisecond), bound)
			require.LessOrEqual(t, worst, bound, "a stream outlived its departed client by more than a heartbeat interval + 1 s")
		})
	}
}
