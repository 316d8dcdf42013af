package fastsse_test

import (
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/lasse-go/lasse/fastsse"
	"github.com/lasse-go/lasse/internal/ssespec"
	"github.com/lasse-go/lasse/internal/ssetest"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// The Group tests over the network, on every transport. (The tests of what
// a Group puts in a queue, on bare Conns, are in group_test.go.)

// memberHandler is a Handler[int] whose Init and HandleNotify a test sets.
// The state counts the events HandleNotify sent.
type memberHandler struct {
	// init decides Init's answer; nil opens the stream with no initial event.
	init func(lastID string, req *fastsse.Request) fastsse.InitResult[int]
	// notify answers HandleNotify; nil sends Event{Data: fmt.Sprint(msg)}.
	notify func(msg any, n int) fastsse.Result[int]
	// conns, when not nil, receives every Conn after Init. Size it for
	// every stream the test opens: Init blocks on it.
	conns chan *fastsse.Conn
}

func (h *memberHandler) Init(_ any, lastID string, req *fastsse.Request) fastsse.InitResult[int] {
	res := fastsse.Open(0)
	if h.init != nil {
		res = h.init(lastID, req)
	}
	if h.conns != nil {
		h.conns <- req.Conn()
	}
	return res
}

func (h *memberHandler) HandleNotify(msg any, n int) fastsse.Result[int] {
	if h.notify != nil {
		return h.notify(msg, n)
	}
	return fastsse.Send(fastsse.Event{Data: fmt.Sprint(msg)}, n+1)
}

func (h *memberHandler) HandleInfo(_ any, n int) fastsse.Result[int]     { return fastsse.NoSend(n) }
func (h *memberHandler) HandleError(_ fastsse.Event, _ error, n int) int { return n }
func (h *memberHandler) Terminate(_ error, _ int)                        {}

// joinInit returns an Init that joins the connection to g.
func joinInit(g *fastsse.Group) func(string, *fastsse.Request) fastsse.InitResult[int] {
	return func(_ string, req *fastsse.Request) fastsse.InitResult[int] {
		if err := g.Join(req.Conn()); err != nil {
			return fastsse.Reply(http.StatusInternalServerError, []byte(err.Error()), 0)
		}
		return fastsse.Open(0)
	}
}

// resumeInit returns an Init that resumes the connection in g from the
// client's Last-Event-ID and opens the stream; on ErrReplayGap, Resume has
// queued the gap event itself. Any other Resume error answers 500, which
// fails the client.
func resumeInit(g *fastsse.Group) func(string, *fastsse.Request) fastsse.InitResult[int] {
	return func(lastID string, req *fastsse.Request) fastsse.InitResult[int] {
		if err := g.Resume(req.Conn(), lastID); err != nil && !errors.Is(err, fastsse.ErrReplayGap) {
			return fastsse.Reply(http.StatusInternalServerError, []byte(err.Error()), 0)
		}
		return fastsse.Open(0)
	}
}

// groupServer is an endpoint served on a transport.
type groupServer struct {
	*ssetest.Server
	ep *fastsse.Endpoint
}

func startGroup(t *testing.T, tr ssetest.Transport, h *memberHandler, opts *fastsse.Options) groupServer {
	t.Helper()
	ep, s := ssetest.Start[int](t, tr, h, opts)
	return groupServer{s, ep}
}

// openStream opens a stream on addr with Last-Event-ID lastID (none when
// empty) and reads it on a goroutine of its own; the caller closes it. A
// response other than a 200 event stream is an error.
func openStream(addr, lastID string) (*ssetest.Client, error) {
	var header []string
	if lastID != "" {
		header = []string{"Last-Event-ID", lastID}
	}
	c, err := ssetest.DialRaw(addr, ssetest.Request("GET", "/events", header...))
	if err != nil {
		return nil, err
	}
	if c.Status != http.StatusOK || c.Header("Content-Type") != "text/event-stream" {
		c.Close()
		return nil, fmt.Errorf("response %d %q", c.Status, c.Header("Content-Type"))
	}
	return c.Start(), nil
}

// getStream is openStream for the test's goroutine; cleanup closes it.
func getStream(t *testing.T, addr, lastID string) *ssetest.Client {
	t.Helper()
	c, err := openStream(addr, lastID)
	require.NoError(t, err)
	t.Cleanup(c.Close)
	return c
}

// expectIDs reads len(ids) events and checks their ids in order.
func expectIDs(c *ssetest.Client, ids ...string) error {
	for i, id := range ids {
		ev, err := c.NextEvent()
		if err != nil {
			return fmt.Errorf("event %d of %d (want id %q): %w", i+1, len(ids), id, err)
		}
		if ev.ID != id {
			return fmt.Errorf("event %d of %d: id %q, want %q (data %.40q)", i+1, len(ids), ev.ID, id, ev.Data)
		}
	}
	return nil
}

// seq returns the ids of a replaying group's positions from, from+1, ...,
// to: EPOCH-SEQ, with the epoch of the id epochOf was given.
func seq(epoch string, from, to int) []string {
	var s []string
	for i := from; i <= to; i++ {
		s = append(s, idAt(epoch, i))
	}
	return s
}

// numbers returns from, from+1, ..., to as strings: the ids a group without
// replay sends as Publish is given them.
func numbers(from, to int) []string {
	var s []string
	for i := from; i <= to; i++ {
		s = append(s, strconv.Itoa(i))
	}
	return s
}

// epochOf returns the epoch of a replaying group's id (EPOCH-SEQ).
func epochOf(id string) string { return id[:strings.LastIndexByte(id, '-')] }

// idAt returns the id of position n in epoch.
func idAt(epoch string, n int) string { return epoch + "-" + strconv.Itoa(n) }

// dialStuck opens a stream from a raw TCP client with a small receive
// buffer that never reads.
func dialStuck(t *testing.T, addr string) net.Conn {
	t.Helper()
	conn, err := net.Dial("tcp", addr)
	require.NoError(t, err)
	t.Cleanup(func() { _ = conn.Close() })
	require.NoError(t, conn.(*net.TCPConn).SetReadBuffer(4096))
	_, err = conn.Write(ssetest.Request("GET", "/events"))
	require.NoError(t, err)
	return conn
}

// TestGroupThousandMembers: 1,000 members each receive every published event
// exactly once and in order.
func TestGroupThousandMembers(t *testing.T) {
	for _, tr := range ssetest.Transports {
		t.Run(tr.Name, func(t *testing.T) {
			t.Parallel()
			// 1,000 streams hold 2,000 descriptors in this process (server and client
			// sides), well under the 20,000 open-files cap.
			const members, events = 1000, 20
			var g fastsse.Group
			h := &memberHandler{init: joinInit(&g)}
			// The events (and a last one) are published back to back, faster than
			// the streams write them. QueueSize is twice their number, so each
			// member's queue holds all of them however far its stream lags: nothing
			// can overflow, and a loss would be a bug, not the overflow policy at
			// work. Heartbeats are off so the streams carry only the events. (20
			// events, not more: 21,000 deliveries already take seconds under -race
			// on two cores.)
			s := startGroup(t, tr, h, &fastsse.Options{QueueSize: 2 * events, Heartbeat: -1})
			clients := make([]*ssetest.Client, members)
			var wg sync.WaitGroup
			errs := make(chan error, members)
			for w := range 8 { // dial in parallel: -race makes each dial slow
				wg.Add(1)
				go func() {
					defer wg.Done()
					for i := w; i < members; i += 8 {
						c, err := openStream(s.Addr, "")
						if err != nil {
							errs <- err
							return
						}
						clients[i] = c
					}
				}()
			}
			wg.Wait()
			for _, c := range clients {
				if c != nil {
					t.Cleanup(c.Close)
				}
			}
			close(errs)
			for err := range errs {
				t.Fatal(err)
			}
			// A stream's headers reach its client after Init joined it.
			require.Equal(t, members, g.Len())

			for i := 1; i <= events; i++ {
				_, err := g.Publish(&fastsse.Event{ID: strconv.Itoa(i), Data: "event " + strconv.Itoa(i)})
				require.NoError(t, err)
			}
			// A last event: a duplicate of an earlier one would arrive before it.
			_, err := g.Publish(&fastsse.Event{ID: "end", Data: "end"})
			require.NoError(t, err)

			want := append(numbers(1, events), "end")
			errs = make(chan error, members)
			for i, c := range clients {
				wg.Add(1)
				go func() {
					defer wg.Done()
					if err := expectIDs(c, want...); err != nil {
						errs <- fmt.Errorf("client %d: %w", i, err)
					}
				}()
			}
			wg.Wait()
			close(errs)
			n := 0
			for err := range errs {
				if n++; n <= 5 {
					t.Error(err)
				}
			}
			if n > 0 {
				t.Fatalf("%d of %d clients failed", n, members)
			}
			st := s.ep.Stats()
			assert.Zero(t, st.Dropped)
			assert.Zero(t, st.SlowConsumers)
			ssetest.Eventually(t, func() bool { return s.ep.Stats().Events == members*(events+1) }, "events counted")
		})
	}
}

// TestGroupSlowMember: a member that stops reading does not delay the
// others; under fastsse.OverflowClose it is closed as a slow consumer and leaves the
// group.
func TestGroupSlowMember(t *testing.T) {
	for _, tr := range ssetest.Transports {
		t.Run(tr.Name, func(t *testing.T) {
			const good = 3
			var g fastsse.Group
			h := &memberHandler{init: joinInit(&g), conns: make(chan *fastsse.Conn, good+1)}
			s := startGroup(t, tr, h, &fastsse.Options{QueueSize: 8, Overflow: fastsse.OverflowClose, Heartbeat: -1})
			var clients []*ssetest.Client
			for range good {
				clients = append(clients, getStream(t, s.Addr, ""))
				ssetest.Recv(t, h.conns, "Init")
			}
			dialStuck(t, s.Addr)
			stuck := ssetest.Recv(t, h.conns, "Init")
			ssetest.Eventually(t, func() bool { return g.Len() == good+1 }, "4 members")

			// Big events fill the stuck client's socket buffers, then its stream's
			// pipe, then its queue, within a few MB. Each event is published when
			// the good clients have the previous one, so they see every event, and
			// how long each took.
			payload := strings.Repeat("x", 32<<10)
			var slowest time.Duration
			published := 0
			for stuck.Err() == nil {
				require.Less(t, published, 2000, "the stuck member was never closed")
				published++
				start := time.Now()
				id := strconv.Itoa(published)
				_, err := g.Publish(&fastsse.Event{ID: id, Data: payload})
				require.NoError(t, err)
				for i, c := range clients {
					ev := c.Event(t)
					require.Equal(t, id, ev.ID, "client %d", i)
				}
				slowest = max(slowest, time.Since(start))
			}
			t.Logf("stuck member closed after %d events of %d KiB; slowest delivery to the others %v",
				published, len(payload)>>10, slowest)
			// Well above a loopback delivery, well below the ssetest.Wait the stuck
			// stream could otherwise have cost.
			assert.Less(t, slowest, 2*time.Second, "the others were delayed")
			assert.Greater(t, published, 8, "the stuck member never filled its queue")

			ssetest.WaitDone(t, stuck)
			assert.ErrorIs(t, stuck.Err(), fastsse.ErrSlowConsumer)
			assert.Equal(t, int64(1), s.ep.Stats().SlowConsumers)
			ssetest.Eventually(t, func() bool { return g.Len() == good }, "the stuck member to leave")

			// The others go on.
			_, err := g.Publish(&fastsse.Event{ID: "after", Data: "y"})
			require.NoError(t, err)
			for i, c := range clients {
				assert.Equal(t, "after", c.Event(t).ID, "client %d", i)
			}
		})
	}
}

// TestGroupResumeSeam: while a goroutine publishes continuously, clients
// resume from an earlier id; each sees the ids after it consecutively, no
// gap and no duplicate where the replay meets the live events.
func TestGroupResumeSeam(t *testing.T) {
	for _, tr := range ssetest.Transports {
		t.Run(tr.Name, func(t *testing.T) {
			t.Parallel()
			const (
				clients  = 60
				parallel = 6
				follow   = 150 // events each client checks after its last id
			)
			g := fastsse.NewGroup(&fastsse.GroupOptions{Replay: 1 << 16})
			h := &memberHandler{init: resumeInit(g)}
			// The publisher runs at about 10k events/s. QueueSize bounds what may
			// wait for a stream that is momentarily off the CPU; 1<<14 is more
			// than a second of events, so a stream that overflows (and fails the
			// test by ending early) would be a real stall, not scheduling noise.
			s := startGroup(t, tr, h, &fastsse.Options{QueueSize: 1 << 14, Overflow: fastsse.OverflowClose, Heartbeat: -1})

			var latest atomic.Int64
			first, err := g.Publish(&fastsse.Event{Data: "x"})
			require.NoError(t, err)
			epoch := epochOf(first)
			stop, stopped := make(chan struct{}), make(chan struct{})
			go func() {
				defer close(stopped)
				for i := 2; ; i++ {
					select {
					case <-stop:
						return
					default:
					}
					id, err := g.Publish(&fastsse.Event{Data: "x"})
					if err != nil || id != idAt(epoch, i) {
						panic(fmt.Sprintf("Publish %d: %q, %v", i, id, err))
					}
					latest.Store(int64(i))
					if i%10 == 0 {
						time.Sleep(time.Millisecond)
					}
				}
			}()
			t.Cleanup(func() { close(stop); <-stopped })
			ssetest.Eventually(t, func() bool { return latest.Load() >= 500 }, "some events")

			sem := make(chan struct{}, parallel)
			errs := make(chan error, clients)
			var wg sync.WaitGroup
			for k := range clients {
				wg.Add(1)
				sem <- struct{}{}
				go func() {
					defer wg.Done()
					defer func() { <-sem }()
					// From the newest id back to 400 events ago: the replay runs
					// from nothing up to a few hundred frames.
					last := int(latest.Load()) - rand.IntN(400)
					c, err := openStream(s.Addr, idAt(epoch, last))
					if err != nil {
						errs <- fmt.Errorf("client %d: %w", k, err)
						return
					}
					defer c.Close()
					if err := expectIDs(c, seq(epoch, last+1, last+follow)...); err != nil {
						errs <- fmt.Errorf("client %d resuming after %d: %w", k, last, err)
					}
				}()
			}
			wg.Wait()
			close(errs)
			for err := range errs {
				t.Error(err)
			}
			assert.Zero(t, s.ep.Stats().SlowConsumers)
		})
	}
}

// TestGroupResumeGap: an id older than the ring, of another epoch, or
// unknown, is reported (fastsse.ErrReplayGap, and Resume's gap event, which
// arrives first, with the id the client sent and the position it joined
// at); the client is joined all the same and gets live events. A ring of 5
// resumes 5 missed events.
func TestGroupResumeGap(t *testing.T) {
	for _, tr := range ssetest.Transports {
		t.Run(tr.Name, func(t *testing.T) {
			t.Parallel()
			g := fastsse.NewGroup(&fastsse.GroupOptions{Replay: 5})
			h := &memberHandler{init: resumeInit(g)}
			s := startGroup(t, tr, h, &fastsse.Options{Heartbeat: -1})
			var epoch string
			for range 10 { // positions 1..10; the ring keeps 6..10
				id, err := g.Publish(&fastsse.Event{Data: "x"})
				require.NoError(t, err)
				epoch = epochOf(id)
			}
			tests := []struct {
				lastID string
				gap    bool
				replay []string
			}{
				{idAt(epoch, 2), true, nil}, // older than the ring
				{idAt(epoch, 4), true, nil}, // just evicted: 5 missed, 4 kept
				{"abc", true, nil},          // never published
				{"7", true, nil},            // an id of an older server's
				{idAt("other123", 7), true, nil},
				{idAt(epoch, 5), false, seq(epoch, 6, 10)},
				{idAt(epoch, 10), false, nil}, // up to date
			}
			var clients []*ssetest.Client
			for _, tt := range tests {
				clients = append(clients, getStream(t, s.Addr, tt.lastID))
			}
			require.Equal(t, len(tests), g.Len(), "every client joined, gap or not")
			id, err := g.Publish(&fastsse.Event{Data: "live"})
			require.NoError(t, err)
			require.Equal(t, idAt(epoch, 11), id)

			for i, tt := range tests {
				t.Run("last="+tt.lastID, func(t *testing.T) {
					c := clients[i]
					if tt.gap {
						ev := c.Event(t)
						assert.Equal(t, fastsse.GapEvent, ev.Type, "the gap comes first")
						assert.Equal(t, tt.lastID, ev.Data)
						assert.Equal(t, idAt(epoch, 10), ev.ID, "the position it joined at")
					}
					require.NoError(t, expectIDs(c, append(tt.replay, idAt(epoch, 11))...))
				})
			}
		})
	}
}

// TestGroupResumeNoStore: a group without a store reports every id as a gap.
func TestGroupResumeNoStore(t *testing.T) {
	for _, tr := range ssetest.Transports {
		t.Run(tr.Name, func(t *testing.T) {
			t.Parallel()
			var g fastsse.Group
			h := &memberHandler{init: resumeInit(&g)}
			s := startGroup(t, tr, h, &fastsse.Options{Heartbeat: -1})
			resumed := getStream(t, s.Addr, "41")
			fresh := getStream(t, s.Addr, "")
			_, err := g.Publish(&fastsse.Event{ID: "42", Data: "x"})
			require.NoError(t, err)
			ev := resumed.Event(t)
			assert.Equal(t, fastsse.GapEvent, ev.Type)
			assert.Equal(t, "41", ev.Data)
			assert.Equal(t, "42", resumed.Event(t).ID)
			assert.Equal(t, "42", fresh.Event(t).ID)
		})
	}
}

// TestGroupPublishInvalidOverNetwork: an invalid event reaches no client.
func TestGroupPublishInvalidOverNetwork(t *testing.T) {
	for _, tr := range ssetest.Transports {
		t.Run(tr.Name, func(t *testing.T) {
			t.Parallel()
			var g fastsse.Group
			s := startGroup(t, tr, &memberHandler{init: joinInit(&g)}, &fastsse.Options{Heartbeat: -1})
			c := getStream(t, s.Addr, "")
			_, err := g.Publish(&fastsse.Event{ID: "1\nevent: injected", Data: "x"})
			require.ErrorIs(t, err, fastsse.ErrInvalidID)
			_, err = g.Publish(&fastsse.Event{ID: "2"})
			require.ErrorIs(t, err, fastsse.ErrDataRequired)
			_, err = g.Publish(&fastsse.Event{ID: "3", Data: "ok"})
			require.NoError(t, err)
			ev := c.Event(t)
			assert.Equal(t, ssespec.Event{Type: "message", ID: "3", Data: "ok", IDSet: true}, ev)
		})
	}
}

// TestGroupNotify: fastsse.Group.Notify reaches HandleNotify of every member, on
// each member's own state.
func TestGroupNotify(t *testing.T) {
	for _, tr := range ssetest.Transports {
		t.Run(tr.Name, func(t *testing.T) {
			t.Parallel()
			var g fastsse.Group
			h := &memberHandler{
				init: joinInit(&g),
				notify: func(msg any, n int) fastsse.Result[int] {
					return fastsse.Send(fastsse.Event{Data: fmt.Sprintf("%v #%d", msg, n+1)}, n+1)
				},
			}
			s := startGroup(t, tr, h, &fastsse.Options{Heartbeat: -1})
			var clients []*ssetest.Client
			for range 3 {
				clients = append(clients, getStream(t, s.Addr, ""))
			}
			g.Notify("hello")
			g.Notify("again")
			for i, c := range clients {
				assert.Equal(t, "hello #1", c.Event(t).Data, "client %d", i)
				assert.Equal(t, "again #2", c.Event(t).Data, "client %d", i)
			}
		})
	}
}

// TestGroupLeaveOnClientGone: a member whose client hung up leaves once a
// heartbeat finds it gone.
func TestGroupLeaveOnClientGone(t *testing.T) {
	for _, tr := range ssetest.Transports {
		t.Run(tr.Name, func(t *testing.T) {
			t.Parallel()
			var g fastsse.Group
			h := &memberHandler{init: joinInit(&g), conns: make(chan *fastsse.Conn, 2)}
			s := startGroup(t, tr, h, &fastsse.Options{Heartbeat: 20 * time.Millisecond})
			gone := getStream(t, s.Addr, "")
			goneConn := ssetest.Recv(t, h.conns, "Init")
			stays := getStream(t, s.Addr, "")
			ssetest.Recv(t, h.conns, "Init")
			require.Equal(t, 2, g.Len())
			gone.Close()
			ssetest.WaitDone(t, goneConn)
			assert.ErrorIs(t, goneConn.Err(), fastsse.ErrClientGone)
			assert.Equal(t, 1, g.Len())
			_, err := g.Publish(&fastsse.Event{ID: "x", Data: "y"})
			require.NoError(t, err)
			assert.Equal(t, "x", stays.Event(t).ID)
		})
	}
}

// TestGroupLeaveOnClose: fastsse.Conn.Close ends the stream; the member leaves, the
// client sees the end, and the fastsse.Conn can join nothing any more.
func TestGroupLeaveOnClose(t *testing.T) {
	for _, tr := range ssetest.Transports {
		t.Run(tr.Name, func(t *testing.T) {
			t.Parallel()
			var g, other fastsse.Group
			h := &memberHandler{init: joinInit(&g), conns: make(chan *fastsse.Conn, 1)}
			s := startGroup(t, tr, h, &fastsse.Options{Heartbeat: -1})
			c := getStream(t, s.Addr, "")
			conn := ssetest.Recv(t, h.conns, "Init")
			require.NoError(t, other.Join(conn))
			require.NoError(t, conn.Close())
			ssetest.WaitDone(t, conn)
			assert.Equal(t, 0, g.Len())
			assert.Equal(t, 0, other.Len())
			_, err := c.NextEvent()
			assert.ErrorIs(t, err, io.EOF, "the stream ended cleanly")
			assert.ErrorIs(t, g.Join(conn), fastsse.ErrClosed)
			assert.ErrorIs(t, g.Resume(conn, ""), fastsse.ErrClosed)
			assert.Equal(t, 0, g.Len())
		})
	}
}

// TestGroupLeaveOnRefused: a fastsse.Conn joined in Init leaves when Init refuses
// the stream after all.
func TestGroupLeaveOnRefused(t *testing.T) {
	for _, tr := range ssetest.Transports {
		t.Run(tr.Name, func(t *testing.T) {
			t.Parallel()
			var g fastsse.Group
			h := &memberHandler{init: func(_ string, req *fastsse.Request) fastsse.InitResult[int] {
				_ = g.Join(req.Conn())
				return fastsse.NoContent(0)
			}}
			s := startGroup(t, tr, h, nil)
			_, err := openStream(s.Addr, "")
			require.ErrorContains(t, err, "204")
			assert.Equal(t, 0, g.Len())
		})
	}
}

// TestGroupConcurrent runs Join, Resume, Leave, Publish, Notify and Len from
// several goroutines while streams end, for the race detector; when all have
// ended, nobody is left in the group.
func TestGroupConcurrent(t *testing.T) {
	for _, tr := range ssetest.Transports {
		t.Run(tr.Name, func(t *testing.T) {
			t.Parallel()
			const conns = 16
			g := fastsse.NewGroup(&fastsse.GroupOptions{Replay: 32})
			h := &memberHandler{init: joinInit(g), conns: make(chan *fastsse.Conn, conns)}
			s := startGroup(t, tr, h, &fastsse.Options{QueueSize: 16, Overflow: fastsse.OverflowDropOldest, Heartbeat: 10 * time.Millisecond})
			var clients []*ssetest.Client
			var cs []*fastsse.Conn
			for range conns {
				c, err := openStream(s.Addr, "") // reads and discards
				require.NoError(t, err)
				t.Cleanup(c.Close)
				clients = append(clients, c)
				cs = append(cs, ssetest.Recv(t, h.conns, "Init"))
			}
			var wg sync.WaitGroup
			for w := range 4 {
				wg.Add(1)
				go func() {
					defer wg.Done()
					r := rand.New(rand.NewPCG(uint64(w), 1))
					for i := range 400 {
						c := cs[r.IntN(conns)]
						switch r.IntN(6) {
						case 0:
							_ = g.Join(c)
						case 1:
							_ = g.Resume(c, strconv.Itoa(r.IntN(500)))
						case 2:
							g.Leave(c)
						case 3:
							_, _ = g.Publish(&fastsse.Event{Data: "p" + strconv.Itoa(i)})
						case 4:
							g.Notify(i)
						case 5:
							_ = g.Len()
						}
					}
				}()
			}
			// Meanwhile, streams end both ways.
			for i := range conns / 2 {
				if i%2 == 0 {
					_ = cs[i].Close()
				} else {
					clients[i].Close()
				}
			}
			wg.Wait()
			for _, c := range cs {
				_ = c.Close()
			}
			for _, c := range cs {
				ssetest.WaitDone(t, c)
			}
			assert.Equal(t, 0, g.Len())
			for _, c := range cs {
				assert.ErrorIs(t, g.Join(c), fastsse.ErrClosed)
			}
			assert.Equal(t, 0, g.Len())
			assert.ErrorIs(t, cs[0].Notify(1), fastsse.ErrClosed)
		})
	}
}
