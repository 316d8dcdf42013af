//go:build linux

package failtest

import (
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/lasse-go/lasse/fastsse"
	"github.com/lasse-go/lasse/internal/ssetest"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestSlowReaderGetsIntactStream: a client that stops reading for a while,
// then reads again, gets every byte: a 1 MB event that the socket could not
// take at once, and the events queued behind it, in order and intact.
//
// Regression test for the dense transport: writevFull shortened the iovec
// in place and writev then worked out the unsent rest from the shortened
// slices, so after a partial write the rest of the batch was dropped (the
// chunk's size line promised bytes that never came, corrupting the stream),
// and nothing was left pending, so StallTimeout never evicted a stuck
// client either.
func TestSlowReaderGetsIntactStream(t *testing.T) {
	for _, tr := range ssetest.Transports {
		t.Run(tr.Name, func(t *testing.T) {
			const bigSize = 1 << 20
			big := strings.Repeat("0123456789abcdef", bigSize/16)
			h := &handler{}
			// A small send buffer, so that the big event cannot go out in one
			// write; a long StallTimeout, so that the pause is not an eviction.
			s := serveSndBuf(t, h, tr, fastsse.Options{Heartbeat: -1, StallTimeout: 10 * time.Second}, stuckSndBuf)
			c, err := ssetest.DialRaw(s.addr, ssetest.Request("GET", "/?tag=slow"))
			require.NoError(t, err)
			defer c.Close()
			r := h.tagged(t, "slow")
			require.NoError(t, r.conn.Notify(fastsse.Event{ID: "big", Data: big}))
			for i := range 20 {
				require.NoError(t, r.conn.Notify(strconv.Itoa(i)))
			}
			time.Sleep(300 * time.Millisecond) // not reading

			_ = c.Conn.SetReadDeadline(time.Now().Add(waitFor))
			ev, err := c.NextEvent() // past the empty first batch, if any
			require.NoError(t, err)
			assert.Equal(t, "big", ev.ID)
			assert.Len(t, ev.Data, bigSize)
			assert.True(t, ev.Data == big, "the big event's data is intact")
			for i := range 20 {
				data, err := c.NextData()
				require.NoError(t, err, "event %d after the big one", i)
				assert.Equal(t, strconv.Itoa(i), data)
			}
			assert.Zero(t, r.terms.Load(), "the stream goes on")
		})
	}
}
