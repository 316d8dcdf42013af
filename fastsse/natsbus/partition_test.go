package natsbus

import (
	"context"
	"io"
	"net"
	"sync"
	"testing"
	"time"

	"github.com/lasse-go/lasse/fastsse"
	"github.com/nats-io/nats.go"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// link is a loopback TCP proxy to the NATS server that a test can cut: an
// instance behind it loses NATS while the others keep it.
type link struct {
	ln     net.Listener
	target string
	mu     sync.Mutex
	cut    bool
	conns  map[net.Conn]bool
	wg     sync.WaitGroup
}

func newLink(tb testing.TB, target string) *link {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(tb, err)
	l := &link{ln: ln, target: target, conns: map[net.Conn]bool{}}
	l.wg.Add(1)
	go l.accept()
	tb.Cleanup(l.close)
	return l
}

func (l *link) url() string { return "nats://" + l.ln.Addr().String() }

func (l *link) accept() {
	defer l.wg.Done()
	for {
		c, err := l.ln.Accept()
		if err != nil {
			return
		}
		l.mu.Lock()
		if l.cut {
			l.mu.Unlock()
			c.Close()
			continue
		}
		up, err := net.Dial("tcp", l.target)
		if err != nil {
			l.mu.Unlock()
			c.Close()
			continue
		}
		l.conns[c], l.conns[up] = true, true
		l.mu.Unlock()
		l.wg.Add(2)
		pipe := func(dst, src net.Conn) {
			defer l.wg.Done()
			_, _ = io.Copy(dst, src)
			dst.Close()
			src.Close()
		}
		go pipe(up, c)
		go pipe(c, up)
	}
}

// setCut cuts the link (closing its connections) or restores it.
func (l *link) setCut(cut bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.cut = cut
	if cut {
		for c := range l.conns {
			c.Close()
		}
		clear(l.conns)
	}
}

func (l *link) close() {
	l.ln.Close()
	l.setCut(true)
	l.wg.Wait()
}

// TestPartitionPastRetention: one instance loses NATS while another
// publishes more than the stream keeps. When its link is back it catches
// up by itself, and its clients are told of what retention dropped with a
// lasse-gap (data: the last id they had; id: where they go on from),
// then get the kept events and the live ones in order. An instance that
// was cut for less than retention catches up with no gap at all.
func TestPartitionPastRetention(t *testing.T) {
	for _, tc := range []struct {
		name    string
		missed  int
		wantGap bool
	}{{"within retention", 10, false}, {"past retention", 100, true}} {
		t.Run(tc.name, func(t *testing.T) {
			ns := startNATS(t)
			cfg := Config{Stream: "PART", MaxMsgs: 20}
			a := startInstance(t, ns, cfg, nil, &fastsse.Options{Heartbeat: -1})
			l := newLink(t, ns.s.Addr().String())
			nc, err := nats.Connect(l.url(), nats.MaxReconnects(-1), nats.ReconnectWait(50*time.Millisecond))
			require.NoError(t, err)
			t.Cleanup(nc.Close)
			ctx, cancel := context.WithTimeout(context.Background(), wait)
			defer cancel()
			bus, err := New(ctx, nc, cfg)
			require.NoError(t, err)
			obs := &busRecorder{}
			g, err := fastsse.NewBusGroup(ctx, bus, &fastsse.GroupOptions{Replay: 100, Observer: obs})
			require.NoError(t, err)
			t.Cleanup(func() { _ = g.Close() })
			b := serveGroup(t, g)
			c := get(t, b, "")
			require.Eventually(t, func() bool { return g.Len() == 1 }, wait, 5*time.Millisecond)

			before := publishN(t, a, 3)
			assert.Equal(t, before, c.ids(t, 3))
			l.setCut(true)
			missed := publishN(t, a, tc.missed)
			l.setCut(false)
			after := publishN(t, a, 2)
			if tc.wantGap {
				ev, err := c.next()
				require.NoError(t, err)
				require.Equal(t, fastsse.GapEvent, ev.Type, "the lost events are told")
				assert.Equal(t, before[2], ev.Data, "the last id the client had")
				// Then what the stream kept, in order from just after the
				// gap's id, up to the live events.
				prev := seqOf(t, ev.ID)
				assert.Greater(t, prev, seqOf(t, before[2])+1)
				for {
					next, err := c.next()
					require.NoError(t, err)
					require.Equal(t, prev+1, seqOf(t, next.ID), "in order after the gap")
					prev++
					if next.ID == after[1] {
						break
					}
				}
				assert.Equal(t, int64(1), bus.Stats().Gaps)
				assert.Equal(t, int64(1), obs.gaps.Load(), "the group's BusObserver heard the gap")
				return
			}
			want := append(missed, after...)
			assert.Equal(t, want, c.ids(t, len(want)), "caught up from history, no gap")
			assert.Zero(t, bus.Stats().Gaps)
		})
	}
}
