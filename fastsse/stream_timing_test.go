package fastsse_test

import (
	"bufio"
	"net/http"
	"strings"
	"testing"

	"github.com/lasse-go/lasse/fastsse"
	"github.com/lasse-go/lasse/internal/ssetest"
	"github.com/stretchr/testify/require"
)

// One connection over loopback, end to end: Notify, HandleNotify, encoding,
// fasthttp's pipe and chunked writer, the socket, and a client that reads the
// event. The client is a bare line reader over net/http's chunked body
// reader, so that it costs little next to the server. Allocations are the
// whole process's: server and client.

// benchPayload is a ~100-byte event's data; benchMsg is it boxed once, so
// that Notify(benchMsg) does not allocate.
var (
	benchPayload     = strings.Repeat("x", 80)
	benchMsg     any = benchPayload
)

// benchHandler sends every message as an event.
type benchHandler struct{ conns chan *fastsse.Conn }

func (h benchHandler) Init(_ any, _ string, req *fastsse.Request) fastsse.InitResult[struct{}] {
	h.conns <- req.Conn()
	return fastsse.Open(struct{}{})
}

func (benchHandler) HandleNotify(msg any, s struct{}) fastsse.Result[struct{}] {
	return fastsse.Send(fastsse.Event{ID: "1234", Event: "update", Data: msg.(string)}, s)
}

func (benchHandler) HandleInfo(_ any, s struct{}) fastsse.Result[struct{}] { return fastsse.NoSend(s) }
func (benchHandler) HandleError(_ fastsse.Event, _ error, s struct{}) struct{} {
	return s
}
func (benchHandler) Terminate(error, struct{}) {}

// benchStream opens one stream on tr and returns its Conn and a reader of
// its body.
func benchStream(b testing.TB, tr ssetest.Transport, opts *fastsse.Options) (*fastsse.Conn, *bufio.Reader) {
	b.Helper()
	h := benchHandler{conns: make(chan *fastsse.Conn, 1)}
	_, s := ssetest.Start[struct{}](b, tr, h, opts)
	c := ssetest.Dial(b, s.Addr, "GET", "/events")
	require.Equal(b, http.StatusOK, c.Status)
	conn := ssetest.Recv(b, h.conns, "Init")
	b.Cleanup(func() { _ = conn.Close() })
	return conn, bufio.NewReaderSize(c.Body(), 64<<10)
}

// readEvent reads up to the blank line that ends an event.
func readEvent(br *bufio.Reader) error {
	for {
		line, err := br.ReadSlice('\n')
		if err != nil {
			return err
		}
		if len(line) == 1 {
			return nil
		}
	}
}

// BenchmarkNotifyLatency is the time from Notify until the client has read
// the event, one event at a time.
func BenchmarkNotifyLatency(b *testing.B) {
	for _, tr := range ssetest.Transports {
		b.Run(tr.Name, func(b *testing.B) {
			conn, br := benchStream(b, tr, &fastsse.Options{Heartbeat: -1})
			b.ReportAllocs()
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				if err := conn.Notify(benchMsg); err != nil {
					b.Fatal(err)
				}
				if err := readEvent(br); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkNotifyThroughput sends events as fast as the stream takes them,
// with up to window of them in flight (sent, not yet read), and measures
// the time per event read. Events sent while a batch is written are
// coalesced into the next batch: one write for many events.
func BenchmarkNotifyThroughput(b *testing.B) {
	for _, tr := range ssetest.Transports {
		b.Run(tr.Name, func(b *testing.B) {
			const window = 256
			conn, br := benchStream(b, tr, &fastsse.Options{Heartbeat: -1, QueueSize: 2 * window})
			evLen := len("id: 1234\nevent: update\ndata: \n\n") + len(benchPayload)
			b.SetBytes(int64(evLen))
			b.ReportAllocs()
			tokens := make(chan struct{}, window)
			for i := 0; i < window; i++ {
				tokens <- struct{}{}
			}
			readErr := make(chan error, 1)
			b.ResetTimer()
			go func() {
				for i := 0; i < b.N; i++ {
					if err := readEvent(br); err != nil {
						readErr <- err
						return
					}
					tokens <- struct{}{}
				}
				readErr <- nil
			}()
			for i := 0; i < b.N; i++ {
				select {
				case <-tokens:
				case err := <-readErr:
					b.Fatal(err)
				}
				if err := conn.Notify(benchMsg); err != nil {
					b.Fatal(err)
				}
			}
			if err := <-readErr; err != nil {
				b.Fatal(err)
			}
		})
	}
}

// notifyAndRead is one event's whole path, one at a time.
func notifyAndRead(conn *fastsse.Conn, br *bufio.Reader) error {
	if err := conn.Notify(benchMsg); err != nil {
		return err
	}
	return readEvent(br)
}
