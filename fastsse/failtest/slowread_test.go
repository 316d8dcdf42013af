//go:build linux

package failtest

import (
	"io"
	"net"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/lasse-go/lasse/fastsse"
	"github.com/lasse-go/lasse/internal/ssetest"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestSlowButReadingClient: a client that reads, but slowly (4 KiB every
// 50 ms through small socket buffers), takes seconds over one 256 KiB
// event, far past a StallTimeout of 300 ms. On the dense transport, whose
// writes are non-blocking, StallTimeout counts from the write's last
// progress: the stream stays and the event arrives whole. On the others a
// write blocks until done and StallTimeout counts from its start: the
// stream ends as a slow consumer. (Options.StallTimeout says both.)
func TestSlowButReadingClient(t *testing.T) {
	for _, tr := range ssetest.Transports {
		t.Run(tr.Name, func(t *testing.T) {
			t.Parallel()
			const size = 256 << 10
			big := strings.Repeat("0123456789abcdef", size/16)
			h := &handler{}
			s := serveSndBuf(t, h, tr, fastsse.Options{Heartbeat: -1, StallTimeout: 300 * time.Millisecond}, 4096)
			d := net.Dialer{Control: func(_, _ string, rc syscall.RawConn) error {
				return rc.Control(func(fd uintptr) { _ = syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_RCVBUF, 4096) })
			}}
			nc, err := d.Dial("tcp", s.addr)
			require.NoError(t, err)
			c, err := ssetest.Handshake(nc, ssetest.Request("GET", "/?tag=slow"))
			require.NoError(t, err)
			defer c.Close()
			r := h.tagged(t, "slow")
			require.NoError(t, r.conn.Notify(fastsse.Event{Data: big}))

			// Read the body 4 KiB at a time, 50 ms apart: about 3 s for
			// the event, past the first batch's bytes.
			_ = nc.SetReadDeadline(time.Now().Add(waitFor))
			buf := make([]byte, 4096)
			got := 0
			var rerr error
			for got < size && rerr == nil {
				var n int
				n, rerr = c.Body().Read(buf)
				got += n
				time.Sleep(50 * time.Millisecond)
			}
			if tr.Name == "dense" {
				require.NoError(t, rerr, "after %d bytes", got)
				assert.GreaterOrEqual(t, got, size)
				assert.Zero(t, r.terms.Load(), "the stream goes on")
				return
			}
			assert.ErrorIs(t, rerr, io.ErrUnexpectedEOF, "cut short after %d bytes", got)
			ssetest.WaitDone(t, r.conn)
			assert.ErrorIs(t, r.reason, fastsse.ErrSlowConsumer)
		})
	}
}
