//go:build linux

package failtest

import (
	"errors"
	"io"
	"strconv"
	"testing"
	"time"

	"github.com/lasse-go/lasse/fastsse"
	"github.com/lasse-go/lasse/internal/ssetest"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

const (
	panicMembers = 500
	panicMsgs    = 40
	panicAt      = 10 // the panicking member panics on its 10th message
	panicPace    = 25 * time.Millisecond
)

// TestPanicUnderLoad: one member of a 500-member group panics in
// HandleNotify on its 10th message while Group.Notify runs every 25 ms. The
// process survives; the panicking stream ends (its client reads events 1-9
// and then the end of the body) and Terminate gets a *fastsse.PanicError
// with the panic's value; every other member gets all 40 messages in
// order, none of them ends; and the server still opens new streams.
func TestPanicUnderLoad(t *testing.T) {
	for _, tr := range ssetest.Transports {
		t.Run(tr.Name, func(t *testing.T) {
			g := &fastsse.Group{}
			h := &handler{
				onInit: func(r *rec, req *fastsse.Request) fastsse.InitResult[*rec] {
					_ = g.Join(r.conn)
					return fastsse.Open(r)
				},
				onNotify: func(msg any, r *rec) fastsse.Result[*rec] {
					if r.tag == "boom" && r.n == panicAt {
						panic("boom at " + strconv.Itoa(r.n))
					}
					return sendMsg(msg, r)
				},
			}
			s := serve(t, h, tr, fastsse.Options{Heartbeat: -1})
			others := ssetest.DialMany(t, s.addr, "/", panicMembers-1)
			boom, err := ssetest.DialRaw(s.addr, ssetest.Request("GET", "/?tag=boom"))
			require.NoError(t, err)
			defer boom.Close()
			ssetest.Eventually(t, func() bool { return g.Len() == panicMembers }, "%d members", panicMembers)

			tk := time.NewTicker(panicPace)
			for i := 1; i <= panicMsgs; i++ {
				<-tk.C
				g.Notify(i)
			}
			tk.Stop()

			br := h.tagged(t, "boom")
			select {
			case <-br.conn.Done():
			case <-time.After(waitFor):
				t.Fatal("the panicking stream did not end")
			}
			var pe *fastsse.PanicError
			require.ErrorAs(t, br.reason, &pe)
			assert.Equal(t, "boom at 10", pe.Value)
			assert.NotEmpty(t, pe.Stack)
			assert.Equal(t, int32(1), br.terms.Load())

			_ = boom.Conn.SetReadDeadline(time.Now().Add(waitFor))
			for i := 1; i < panicAt; i++ {
				data, err := boom.NextData()
				require.NoError(t, err)
				assert.Equal(t, strconv.Itoa(i), data)
			}
			_, err = boom.NextData()
			assert.ErrorIs(t, err, io.EOF, "the panicking stream ends with its final chunk")

			var bad int
			for n, c := range others {
				_ = c.Conn.SetReadDeadline(time.Now().Add(waitFor))
				for i := 1; i <= panicMsgs; i++ {
					data, err := c.NextData()
					if err == nil && data != strconv.Itoa(i) {
						err = errors.New("got " + data + ", want " + strconv.Itoa(i))
					}
					if err != nil {
						bad++
						if bad <= 3 {
							t.Errorf("member %d, message %d: %v", n, i, err)
						}
						break
					}
				}
			}
			assert.Zero(t, bad, "members that missed messages")
			assert.Equal(t, int64(1), h.terms.Load(), "only the panicking stream ended")
			assert.Equal(t, int64(panicMembers-1), s.ep.Stats().Open)

			c, err := ssetest.DialRaw(s.addr, ssetest.Request("GET", "/"))
			require.NoError(t, err, "a new stream after the panic")
			defer c.Close()
			assert.Equal(t, 200, c.Status)
		})
	}
}
