//go:build linux

package failtest

import (
	"context"
	"errors"
	"io"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/lasse-go/lasse/fastsse"
	"github.com/lasse-go/lasse/internal/ssespec"
	"github.com/lasse-go/lasse/internal/ssetest"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

const drainStreams = 5000

// TestDrain5000: Endpoint.Drain with 5,000 open streams and a spread of 2 s.
// Every stream ends with ErrShutdown (Terminate exactly once each), Drain
// returns within the spread + 1.5 s (the last stream is ended at 2 s ×
// 4999/5000; the slack is for it, and the streams ended just before it, to
// write their hint and run Terminate on a busy machine under -race; 3 s
// under -race), the ends are spread over the period rather than bunched,
// and every client reads the retry hint (100-150% of the default 3 s) and
// then the end of its stream.
//
// The clients are lean: one TCP connection and a 512-byte buffer each, no
// goroutine; each is read after Drain returned, from what its socket holds.
// 5,000 clients and 5,000 server sides make 10,000 descriptors, under this
// machine's limit of 20,000.
func TestDrain5000(t *testing.T) {
	for _, tr := range ssetest.Transports {
		t.Run(tr.Name, func(t *testing.T) {
			h := &handler{}
			s := serve(t, h, tr, fastsse.Options{Heartbeat: -1})
			clients := ssetest.DialMany(t, s.addr, "/", drainStreams)
			ssetest.Eventually(t, func() bool { return s.ep.Stats().Open == drainStreams }, "%d streams open", drainStreams)

			const spread = 2 * time.Second
			slack := 1500 * time.Millisecond
			if raceEnabled {
				slack = 3 * time.Second
			}
			ctx, cancel := context.WithTimeout(context.Background(), spread+waitFor)
			defer cancel()
			start := nowNS()
			require.NoError(t, s.ep.Drain(ctx, spread))
			took := time.Duration(nowNS() - start)

			recs := h.all()
			require.Len(t, recs, drainStreams)
			ends := make([]time.Duration, 0, len(recs))
			for _, r := range recs {
				select {
				case <-r.conn.Done():
				default:
					t.Fatal("Drain returned before a stream ended")
				}
				assert.Equal(t, int32(1), r.terms.Load())
				assert.ErrorIs(t, r.reason, fastsse.ErrShutdown)
				ends = append(ends, time.Duration(r.endNS-start))
			}
			slices.Sort(ends)
			p10, p50, p90 := ends[len(ends)/10], ends[len(ends)/2], ends[len(ends)*9/10]
			t.Logf("Drain of %d streams over %v took %v (bound %v); Terminate at p10 %v, p50 %v, p90 %v",
				drainStreams, spread, took, spread+slack, p10, p50, p90)
			assert.LessOrEqual(t, took, spread+slack)
			// Spread evenly: the 10th percentile of the ends comes at about
			// 0.2 s and the 90th at about 1.8 s.
			assert.Less(t, p10, spread*3/10, "ends are spread")
			assert.Greater(t, p90, spread*7/10, "ends are spread")
			assert.Zero(t, s.ep.Stats().Open)

			var bad int
			for i, c := range clients {
				if err := readHint(c); err != nil {
					bad++
					if bad <= 3 {
						t.Errorf("client %d: %v", i, err)
					}
				}
			}
			assert.Zero(t, bad, "clients without the retry hint")
		})
	}
}

// readHint reads what is left of a drained stream: the retry hint as its
// last frame, then the end of the body.
func readHint(c *ssetest.Client) error {
	_ = c.Conn.SetReadDeadline(time.Now().Add(waitFor))
	var last ssespec.Block
	for {
		ev, err := c.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return err
		}
		last = ev
	}
	if last.Dispatched {
		return errors.New("the last frame is an event, not a retry hint")
	}
	if !last.Event.HasRetry {
		return errors.New("no retry hint at the end of the stream")
	}
	if ms := last.Event.Retry; ms < 3000 || ms > 4500 {
		return errors.New("retry hint " + strconv.FormatInt(ms, 10) + " not in 3000-4500 ms")
	}
	return nil
}

// TestShutdownAfterDrainWithStuckClient: Drain then Server.Shutdown, as the
// docs say, with a client that stopped reading and whose socket is full.
// Shutdown returns within the 1 s grace + slack; before the fix in
// Endpoint.Drain, the stream transport's Shutdown waited for good (Drain
// ended the stream, whose last bytes sat in fasthttp's pipe behind the
// stuck socket, with no write deadline).
func TestShutdownAfterDrainWithStuckClient(t *testing.T) {
	for _, tr := range ssetest.Transports {
		t.Run(tr.Name, func(t *testing.T) {
			big := fastsse.Event{Data: strings.Repeat("x", stuckPrefill)}
			h := &handler{onNotify: func(msg any, r *rec) fastsse.Result[*rec] {
				if _, ok := msg.(prefill); ok {
					return fastsse.Send(big, r)
				}
				return sendMsg(msg, r)
			}}
			s := serveSndBuf(t, h, tr, fastsse.Options{Heartbeat: -1}, stuckSndBuf)
			reader, err := ssetest.DialRaw(s.addr, ssetest.Request("GET", "/"))
			require.NoError(t, err)
			defer reader.Close()
			stuck, err := dialSmallRcvBuf(s.addr, 4096, ssetest.Request("GET", "/?tag=stuck"))
			require.NoError(t, err)
			defer stuck.Close()
			sr := h.tagged(t, "stuck")
			require.NoError(t, sr.conn.Notify(prefill{}))
			require.NoError(t, sr.conn.Notify("after"))
			time.Sleep(200 * time.Millisecond) // the prefill fills the socket

			ctx, cancel := context.WithTimeout(context.Background(), waitFor)
			defer cancel()
			start := time.Now()
			require.NoError(t, s.ep.Drain(ctx, 0))
			drained := time.Since(start)
			require.NoError(t, s.srv.ShutdownContext(ctx), "Shutdown after Drain")
			took := time.Since(start)
			t.Logf("Drain %v, Drain + Shutdown %v; the stuck stream ended with %v", drained, took, sr.reason)
			assert.Less(t, took, 3*time.Second, "1 s grace + slack")
			assert.NoError(t, readHint(reader), "the reading client")
		})
	}
}
