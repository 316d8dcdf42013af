package main

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/lasse-go/lasse/fastsse"
	"github.com/lasse-go/lasse/fastsse/natsbus"
	"github.com/lasse-go/lasse/internal/ssespec"
	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// The cluster tests run news as separate processes joined by a real
// nats-server (in the test process, listening on loopback, file storage).

const clusterWait = 10 * time.Second

// TestCluster builds the command once and runs the multi-process cases.
func TestCluster(t *testing.T) {
	bin := filepath.Join(t.TempDir(), "news")
	out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput()
	require.NoError(t, err, "%s", out)
	t.Run("FanOut", func(t *testing.T) { testClusterFanOut(t, bin) })
	t.Run("InstanceKill", func(t *testing.T) { testClusterInstanceKill(t, bin) })
	t.Run("NATSRestart", func(t *testing.T) { testClusterNATSRestart(t, bin) })
	t.Run("Retention", func(t *testing.T) { testClusterRetention(t, bin) })
	t.Run("RestartReportsGap", func(t *testing.T) { testRestartReportsGap(t, bin) })
	t.Run("RestartOnBusResumes", func(t *testing.T) { testRestartOnBusResumes(t, bin) })
}

// natsProc is a nats-server for the test's processes.
type natsProc struct {
	s    *server.Server
	opts *server.Options
}

func startNATSProc(t *testing.T) *natsProc {
	n := &natsProc{opts: &server.Options{Host: "127.0.0.1", Port: -1, JetStream: true, StoreDir: t.TempDir(), NoLog: true, NoSigs: true}}
	n.start(t)
	t.Cleanup(n.stop)
	return n
}

func (n *natsProc) start(t *testing.T) {
	s, err := server.NewServer(n.opts)
	require.NoError(t, err)
	go s.Start()
	require.True(t, s.ReadyForConnections(clusterWait))
	n.s = s
	n.opts.Port = s.Addr().(*net.TCPAddr).Port
}

func (n *natsProc) stop() {
	if n.s != nil {
		n.s.Shutdown()
		n.s.WaitForShutdown()
		n.s = nil
	}
}

func (n *natsProc) url() string { return fmt.Sprintf("nats://127.0.0.1:%d", n.opts.Port) }

// newsProc is one news process.
type newsProc struct {
	cmd  *exec.Cmd
	base string // http://ADDR
	done chan struct{}
}

var listening = regexp.MustCompile(`listening on (http://[^/ ]+)/`)

// startNewsProc starts bin with args and waits for it to listen.
func startNewsProc(t *testing.T, bin string, args ...string) *newsProc {
	t.Helper()
	cmd := exec.Command(bin, append([]string{"-addr", "127.0.0.1:0", "-drain-spread", "0s"}, args...)...)
	stderr, err := cmd.StderrPipe()
	require.NoError(t, err)
	require.NoError(t, cmd.Start())
	p := &newsProc{cmd: cmd, done: make(chan struct{})}
	found := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(stderr)
		for sc.Scan() {
			if m := listening.FindStringSubmatch(sc.Text()); m != nil {
				select {
				case found <- m[1]:
				default:
				}
			}
		}
		_ = cmd.Wait()
		close(p.done)
	}()
	t.Cleanup(p.kill)
	select {
	case p.base = <-found:
	case <-p.done:
		t.Fatal("news exited before listening")
	case <-time.After(clusterWait):
		t.Fatal("news did not listen")
	}
	return p
}

func (p *newsProc) kill() {
	_ = p.cmd.Process.Signal(syscall.SIGKILL)
	<-p.done
}

// httpClient keeps no idle connection (goleak would see their goroutines).
var httpClient = &http.Client{Timeout: clusterWait, Transport: &http.Transport{DisableKeepAlives: true}}

// streamHTTP is the streams' client: no timeout, no idle connections.
var streamHTTP = &http.Client{Transport: &http.Transport{DisableKeepAlives: true}}

// post publishes data on p and returns the news' id.
func (p *newsProc) post(t *testing.T, data string) string {
	t.Helper()
	id, code, err := p.postErr(data)
	require.NoError(t, err)
	require.Equal(t, http.StatusOK, code, id)
	return id
}

func (p *newsProc) postErr(data string) (string, int, error) {
	resp, err := httpClient.Post(p.base+"/news", "text/plain", strings.NewReader(data))
	if err != nil {
		return "", 0, err
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return string(b), resp.StatusCode, nil
}

// streamClient reads GET /news and, when its stream ends, reconnects to
// the next of its instances with Last-Event-ID, as a browser would.
type streamClient struct {
	events chan ssespec.Event
	cancel context.CancelFunc
	wg     sync.WaitGroup
}

func follow(t *testing.T, lastID string, procs ...*newsProc) *streamClient {
	ctx, cancel := context.WithCancel(context.Background())
	c := &streamClient{events: make(chan ssespec.Event, 10000), cancel: cancel}
	c.wg.Add(1)
	go func() {
		defer c.wg.Done()
		for i := 0; ctx.Err() == nil; i++ {
			p := procs[i%len(procs)]
			lastID = c.read(ctx, p.base, lastID)
			select {
			case <-ctx.Done():
			case <-time.After(50 * time.Millisecond):
			}
		}
	}()
	t.Cleanup(func() { cancel(); c.wg.Wait() })
	return c
}

// read streams from base until the stream ends; it returns the last id.
func (c *streamClient) read(ctx context.Context, base, lastID string) string {
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, base+"/news", nil)
	if lastID != "" {
		req.Header.Set("Last-Event-ID", lastID)
	}
	resp, err := streamHTTP.Do(req)
	if err != nil {
		return lastID
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return lastID
	}
	var p ssespec.Parser
	b := make([]byte, 16<<10)
	for {
		n, err := resp.Body.Read(b)
		for _, ev := range p.Feed(b[:n]) {
			lastID = ev.ID
			c.events <- ev
		}
		if err != nil {
			return lastID
		}
	}
}

// next returns the next event within clusterWait.
func (c *streamClient) next(t *testing.T) ssespec.Event {
	t.Helper()
	select {
	case ev := <-c.events:
		return ev
	case <-time.After(clusterWait):
		t.Fatal("no event within the wait")
		return ssespec.Event{}
	}
}

// expect reads len(ids) events and checks their ids.
func (c *streamClient) expect(t *testing.T, ids []string) {
	t.Helper()
	for i, id := range ids {
		ev := c.next(t)
		require.Equal(t, id, ev.ID, "event %d of %d (%s %q)", i+1, len(ids), ev.Type, ev.Data)
	}
}

// seq returns the position in an id EPOCH-SEQ.
func seq(t *testing.T, id string) int {
	n, err := strconv.Atoi(id[strings.LastIndexByte(id, '-')+1:])
	require.NoError(t, err, id)
	return n
}

func testClusterFanOut(t *testing.T, bin string) {
	n := startNATSProc(t)
	var procs []*newsProc
	for range 3 {
		procs = append(procs, startNewsProc(t, bin, "-nats", n.url()))
	}
	var clients []*streamClient
	for i := range 9 {
		clients = append(clients, follow(t, "", procs[i%3]))
	}
	time.Sleep(300 * time.Millisecond) // let the streams open
	var ids []string
	for i := range 20 {
		ids = append(ids, procs[i%3].post(t, "news "+strconv.Itoa(i)))
	}
	for i := 1; i < len(ids); i++ {
		require.Equal(t, seq(t, ids[i-1])+1, seq(t, ids[i]), "one sequence across the instances")
	}
	for _, c := range clients {
		c.expect(t, ids)
	}
}

func testClusterInstanceKill(t *testing.T, bin string) {
	n := startNATSProc(t)
	a := startNewsProc(t, bin, "-nats", n.url(), "-keep", "10")
	b := startNewsProc(t, bin, "-nats", n.url(), "-keep", "10")
	c := startNewsProc(t, bin, "-nats", n.url(), "-keep", "10")
	cl := follow(t, "", a, b)
	time.Sleep(300 * time.Millisecond)
	const total = 150
	posted := make(chan string, total)
	go func() {
		defer close(posted)
		for i := range total {
			id, code, err := c.postErr("n" + strconv.Itoa(i))
			if err != nil || code != http.StatusOK {
				return
			}
			posted <- id
			time.Sleep(5 * time.Millisecond)
		}
	}()
	var got []string
	for len(got) < total {
		ev := cl.next(t)
		require.NotEqual(t, fastsse.GapEvent, ev.Type, "after %d", len(got))
		if len(got) > 0 {
			require.Equal(t, seq(t, got[len(got)-1])+1, seq(t, ev.ID), "no gap, no duplicate across the kill")
		}
		got = append(got, ev.ID)
		if len(got) == 40 {
			a.kill() // the client's instance dies mid-stream
		}
	}
	var want []string
	for id := range posted {
		want = append(want, id)
	}
	assert.Equal(t, want, got)
}

func testClusterNATSRestart(t *testing.T, bin string) {
	n := startNATSProc(t)
	a := startNewsProc(t, bin, "-nats", n.url())
	b := startNewsProc(t, bin, "-nats", n.url())
	ca, cb := follow(t, "", a), follow(t, "", b)
	time.Sleep(300 * time.Millisecond)
	var acked []string
	failed := 0
	publish := func(k int) {
		for i := range k {
			id, code, err := a.postErr("r" + strconv.Itoa(i))
			if err == nil && code == http.StatusOK {
				acked = append(acked, id)
			} else {
				failed++
			}
			time.Sleep(5 * time.Millisecond)
		}
	}
	publish(30)
	n.stop()
	publish(1) // NATS down: it waits up to the publish timeout (5 s), then 503
	n.start(t)
	require.Eventually(t, func() bool {
		id, code, err := a.postErr("back")
		if err == nil && code == http.StatusOK {
			acked = append(acked, id)
			return true
		}
		return false
	}, clusterWait, 100*time.Millisecond)
	publish(30)
	t.Logf("%d acknowledged, %d failed while NATS was down", len(acked), failed)
	assert.Positive(t, failed)
	for name, c := range map[string]*streamClient{"a": ca, "b": cb} {
		var got []string
		for len(got) == 0 || got[len(got)-1] != acked[len(acked)-1] {
			ev := c.next(t)
			require.NotEqual(t, fastsse.GapEvent, ev.Type, name)
			if len(got) > 0 {
				require.Equal(t, seq(t, got[len(got)-1])+1, seq(t, ev.ID), "%s: no gap after recovery", name)
			}
			got = append(got, ev.ID)
		}
		assert.Subset(t, got, acked, name)
	}
}

func testClusterRetention(t *testing.T, bin string) {
	n := startNATSProc(t)
	// The stream exists before the instances, with a short history.
	nc, err := nats.Connect(n.url())
	require.NoError(t, err)
	defer nc.Close()
	ctx, cancel := context.WithTimeout(context.Background(), clusterWait)
	defer cancel()
	_, err = natsbus.New(ctx, nc, natsbus.Config{Stream: "news", MaxMsgs: 20})
	require.NoError(t, err)
	a := startNewsProc(t, bin, "-nats", n.url(), "-keep", "5")
	var ids []string
	for i := range 60 {
		ids = append(ids, a.post(t, strconv.Itoa(i)))
	}
	cl := follow(t, ids[10], a)
	ev := cl.next(t)
	assert.Equal(t, fastsse.GapEvent, ev.Type)
	assert.Equal(t, ids[10], ev.Data)
	assert.Equal(t, ids[59], ev.ID)
	ok := follow(t, ids[39], a) // missed exactly the 20 kept
	ok.expect(t, ids[40:])
}

// testRestartReportsGap is the case with processes and no bus: an
// id from before a restart is reported as a gap.
func testRestartReportsGap(t *testing.T, bin string) {
	a := startNewsProc(t, bin)
	var old []string
	for _, d := range []string{"a", "b", "c"} {
		old = append(old, a.post(t, d))
	}
	a.kill()
	b := startNewsProc(t, bin)
	var ids []string
	for i := range 5 {
		ids = append(ids, b.post(t, strconv.Itoa(i)))
	}
	cl := follow(t, old[2], b)
	ev := cl.next(t)
	assert.Equal(t, fastsse.GapEvent, ev.Type)
	assert.Equal(t, old[2], ev.Data)
	assert.Equal(t, ids[4], ev.ID)
}

// testRestartOnBusResumes: on a bus, ids outlive an instance: after a
// restart the client resumes with nothing lost.
func testRestartOnBusResumes(t *testing.T, bin string) {
	n := startNATSProc(t)
	a := startNewsProc(t, bin, "-nats", n.url())
	var ids []string
	for i := range 3 {
		ids = append(ids, a.post(t, strconv.Itoa(i)))
	}
	a.kill()
	b := startNewsProc(t, bin, "-nats", n.url())
	for i := range 5 {
		ids = append(ids, b.post(t, strconv.Itoa(i)))
	}
	follow(t, ids[2], b).expect(t, ids[3:])
}
