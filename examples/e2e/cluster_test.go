package e2e

import (
	"io"
	"net"
	"reflect"
	"strconv"
	"sync"
	"testing"
	"time"
)

// failover is a loopback TCP proxy in front of several servers, as a load
// balancer is in front of instances: each connection goes to the current
// server, and when that one cannot be reached, to the next.
type failover struct {
	ln       net.Listener
	backends []string
	mu       sync.Mutex
	current  int
	served   []int // connections per backend
	wg       sync.WaitGroup
	conns    map[net.Conn]bool
}

func newFailover(t *testing.T, backends ...string) *failover {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	f := &failover{ln: ln, backends: backends, served: make([]int, len(backends)), conns: map[net.Conn]bool{}}
	f.wg.Add(1)
	go f.accept()
	t.Cleanup(f.close)
	return f
}

func (f *failover) addr() string { return f.ln.Addr().String() }

func (f *failover) accept() {
	defer f.wg.Done()
	for {
		c, err := f.ln.Accept()
		if err != nil {
			return
		}
		f.wg.Add(1)
		go f.serve(c)
	}
}

func (f *failover) serve(c net.Conn) {
	defer f.wg.Done()
	var up net.Conn
	f.mu.Lock()
	start := f.current
	f.mu.Unlock()
	for i := range f.backends {
		k := (start + i) % len(f.backends)
		var err error
		if up, err = net.DialTimeout("tcp", f.backends[k], time.Second); err == nil {
			f.mu.Lock()
			f.current = k
			f.served[k]++
			f.conns[c], f.conns[up] = true, true
			f.mu.Unlock()
			break
		}
	}
	if up == nil {
		c.Close()
		return
	}
	done := make(chan struct{}, 2)
	pipe := func(dst, src net.Conn) {
		_, _ = io.Copy(dst, src)
		// Either side closing ends both: a killed server's streams end
		// for the browser as they would behind a balancer.
		dst.Close()
		src.Close()
		done <- struct{}{}
	}
	go pipe(up, c)
	go pipe(c, up)
	<-done
	<-done
	f.mu.Lock()
	delete(f.conns, c)
	delete(f.conns, up)
	f.mu.Unlock()
}

func (f *failover) close() {
	f.ln.Close()
	f.mu.Lock()
	for c := range f.conns {
		c.Close()
	}
	f.mu.Unlock()
	f.wg.Wait()
}

func (f *failover) servedBy() []int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]int(nil), f.served...)
}

// kill ends an example at once (SIGKILL: no drain, no retry hint), as an
// instance dies; its cleanup then has nothing to stop.
func (e *example) kill() {
	e.once.Do(func() {
		_ = e.cmd.Process.Kill()
		<-e.exited
	})
}

// TestNewsInstanceKillInBrowser: headless Chromium holds an EventSource
// through a proxy in front of two news instances on one NATS bus. The
// instance serving it is killed; the browser's own EventSource reconnects
// (the proxy sends it to the other instance) with Last-Event-ID, and the
// page goes on from the next news, nothing lost, nothing repeated, no gap
// event.
func TestNewsInstanceKillInBrowser(t *testing.T) {
	natsPort := strconv.Itoa(freePort(t))
	host := startExample(t, "news", "-nats", "embedded:"+natsPort) // hosts NATS; never killed
	url := "nats://127.0.0.1:" + natsPort
	a := startExample(t, "news", "-nats", url)
	b := startExample(t, "news", "-nats", url)
	px := newFailover(t, a.addr, b.addr)
	br := newBrowser(t)
	br.navigate(t, "http://"+px.addr()+"/")
	br.waitFor(t, "the EventSource to open", streamOpen, pageState)

	id1 := postNews(t, host, "one")
	br.waitFor(t, "news one", `window.received.length >= 1`, pageState)
	a.kill() // the instance serving the page (the proxy's first)
	br.waitFor(t, "the page to see the stream end", `document.getElementById('state').textContent === 'reconnecting'`, pageState)
	id2 := postNews(t, host, "two") // while the browser is away
	id3 := postNews(t, b, "three")
	br.waitFor(t, "news two and three after the reconnect", `window.received.length >= 3`, pageState)
	time.Sleep(settle)
	want := []item{{Type: "message", ID: id1, Data: "one"}, {Type: "message", ID: id2, Data: "two"}, {Type: "message", ID: id3, Data: "three"}}
	if got := received(t, br); !reflect.DeepEqual(got, want) {
		t.Errorf("window.received:\n got %+q\nwant %+q", got, want)
	}
	if s := px.servedBy(); s[0] == 0 || s[1] == 0 {
		t.Errorf("connections per instance %v: the page should have been served by both", s)
	}
	t.Logf("connections per instance through the proxy: %v", px.servedBy())
}
