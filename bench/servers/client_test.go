package servers_test

import (
	"context"
	"errors"
	"io"
	"net"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/lasse-go/lasse/fastsse/sseclient"
)

// TestSSEClient: fastsse/sseclient reads every peer server (and the raw
// fasthttp loop), and reconnects through a cut connection with
// Last-Event-ID. None of them resumes: the events published while the
// client was away are lost, and nothing tells the client so (a fastsse
// Group with replay resumes it, or sends the gap signal). The package doc
// of sseclient and bench/RESULTS.md write down what differs.
func TestSSEClient(t *testing.T) {
	dir := build(t)
	for _, name := range servers {
		t.Run(name, func(t *testing.T) {
			addr := start(t, filepath.Join(dir, name), "-addr", "127.0.0.1:0", "-rate", "100", "-size", "64", "-heartbeat", "50ms")
			px := newCutProxy(t, addr)
			ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
			defer cancel()
			var errs []error
			s := sseclient.Connect(ctx, "http://"+px.addr()+"/feed", &sseclient.Options{
				Backoff: sseclient.Backoff{Initial: 20 * time.Millisecond, Max: 200 * time.Millisecond},
				OnError: func(err error, _ time.Duration) { errs = append(errs, err) },
			})
			var before, after []uint64
			began := time.Now().UnixNano()
			for ev, err := range s.Events() {
				if err != nil {
					t.Fatal(err)
				}
				id, err := strconv.ParseUint(string(ev.ID), 10, 64)
				if err != nil {
					t.Fatalf("id %q: %v", ev.ID, err)
				}
				checkData(t, string(ev.Data), 64, began-int64(time.Second))
				if len(errs) == 0 {
					before = append(before, id)
					if len(before) == 20 {
						px.cut(300 * time.Millisecond)
					}
					continue
				}
				after = append(after, id)
				if len(after) == 20 {
					break
				}
			}
			consecutive(t, "before the cut", before)
			consecutive(t, "after the cut", after)
			last := before[len(before)-1]
			if after[0] <= last {
				t.Errorf("after the cut, id %d after %d: a duplicate", after[0], last)
			}
			sent := px.lastEventIDs()
			if len(sent) < 2 || sent[0] != "" || sent[len(sent)-1] != strconv.FormatUint(last, 10) {
				t.Errorf("Last-Event-ID sent: %q, want none, then %d", sent, last)
			}
			t.Logf("%s: cut after id %d, resumed at %d (%d events lost, no gap signal); errors: %v", name, last, after[0], after[0]-last-1, errs)
			if after[0] == last+1 {
				t.Errorf("%s resumed without loss: the doc says it does not", name)
			}
		})
	}
}

func consecutive(t *testing.T, what string, ids []uint64) {
	t.Helper()
	for i := 1; i < len(ids); i++ {
		if ids[i] != ids[i-1]+1 {
			t.Fatalf("%s: id %d after %d", what, ids[i], ids[i-1])
		}
	}
}

// cutProxy forwards loopback connections to a backend; cut closes them all
// and refuses new ones for a while. It records the Last-Event-ID of every
// request that passed.
type cutProxy struct {
	ln      net.Listener
	backend string
	wg      sync.WaitGroup

	mu    sync.Mutex
	conns map[net.Conn]struct{}
	until time.Time // new connections are closed until then
	ids   []string
}

var lastEventIDLine = regexp.MustCompile(`(?im)^last-event-id:[ \t]*([^\r\n]*)\r?$`)

func newCutProxy(t *testing.T, backend string) *cutProxy {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &cutProxy{ln: ln, backend: backend, conns: map[net.Conn]struct{}{}}
	p.wg.Go(p.serve)
	t.Cleanup(func() {
		ln.Close()
		p.mu.Lock()
		for c := range p.conns {
			c.Close()
		}
		p.mu.Unlock()
		p.wg.Wait()
	})
	return p
}

func (p *cutProxy) addr() string { return p.ln.Addr().String() }

func (p *cutProxy) serve() {
	for {
		c, err := p.ln.Accept()
		if err != nil {
			return
		}
		p.mu.Lock()
		refused := time.Now().Before(p.until)
		if !refused {
			p.conns[c] = struct{}{}
		}
		p.mu.Unlock()
		if refused {
			c.Close()
			continue
		}
		p.wg.Go(func() { p.forward(c) })
	}
}

func (p *cutProxy) forward(c net.Conn) {
	defer p.forget(c)
	b, err := net.Dial("tcp", p.backend)
	if err != nil {
		return
	}
	p.mu.Lock()
	p.conns[b] = struct{}{}
	p.mu.Unlock()
	defer p.forget(b)
	buf := make([]byte, 4096)
	n, err := c.Read(buf)
	if err != nil {
		return
	}
	id := ""
	if m := lastEventIDLine.FindSubmatch(buf[:n]); m != nil {
		id = strings.TrimSpace(string(m[1]))
	}
	p.mu.Lock()
	p.ids = append(p.ids, id)
	p.mu.Unlock()
	if _, err := b.Write(buf[:n]); err != nil {
		return
	}
	done := make(chan struct{})
	go func() { _, _ = io.Copy(b, c); b.Close(); close(done) }()
	_, _ = io.Copy(c, b)
	c.Close()
	<-done
}

func (p *cutProxy) forget(c net.Conn) {
	c.Close()
	p.mu.Lock()
	delete(p.conns, c)
	p.mu.Unlock()
}

// cut closes every connection and refuses new ones for d.
func (p *cutProxy) cut(d time.Duration) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.until = time.Now().Add(d)
	for c := range p.conns {
		c.Close()
	}
}

func (p *cutProxy) lastEventIDs() []string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]string(nil), p.ids...)
}

// r3labs/sse answers a Last-Event-ID that is not a decimal number with 400
// (it parses every id as an int, replay or not): the client, like a
// browser, stops for good. go-sse and the raw loop ignore the id.
func TestSSEClientNonNumericID(t *testing.T) {
	dir := build(t)
	for _, name := range servers {
		t.Run(name, func(t *testing.T) {
			addr := start(t, filepath.Join(dir, name), "-addr", "127.0.0.1:0", "-rate", "100", "-size", "64", "-heartbeat", "50ms")
			ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
			defer cancel()
			s := sseclient.Connect(ctx, "http://"+addr+"/feed", &sseclient.Options{LastEventID: "epoch-7"})
			for ev, err := range s.Events() {
				var se *sseclient.StatusError
				switch {
				case name == "r3labs":
					if !errors.As(err, &se) || se.StatusCode != 400 {
						t.Fatalf("r3labs: %v, want a 400", err)
					}
				case err != nil:
					t.Fatal(err)
				case len(ev.ID) == 0:
					t.Fatal("an event without id")
				}
				break
			}
		})
	}
}
