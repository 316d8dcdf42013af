package sseclient_test

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/lasse-go/lasse/fastsse"
	"github.com/lasse-go/lasse/fastsse/sseclient"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"github.com/valyala/fasthttp"
)

// serverEnv tells TestHelperServerProcess, in a child process, what to
// serve: "addr transport epoch".
const serverEnv = "SSECLIENT_TEST_SERVER"

// TestHelperServerProcess is not a test: it is the server process that
// TestKilledServer starts (the test binary run again with
// -test.run=^TestHelperServerProcess$), kills and starts again on the same
// port. It serves a feed with replay whose ids are epoch-1, epoch-2, ...,
// published every 5 ms, prints "ready ADDR", and exits by itself after a
// minute should its parent not kill it.
func TestHelperServerProcess(t *testing.T) {
	spec := os.Getenv(serverEnv)
	if spec == "" {
		t.Skip("the server process of TestKilledServer")
	}
	fail := func(err error) { fmt.Println("error:", err); os.Exit(2) }
	parts := strings.Fields(spec)
	if len(parts) != 3 {
		fail(fmt.Errorf("%s=%q", serverEnv, spec))
	}
	tr, err := strconv.Atoi(parts[1])
	if err != nil {
		fail(err)
	}
	f := &feed{group: fastsse.NewGroup(&fastsse.GroupOptions{Replay: 10000})}
	ep, err := fastsse.New(f, options(fastsse.Transport(tr), fastsse.Options{}))
	if err != nil {
		fail(err)
	}
	ln, err := net.Listen("tcp", parts[0])
	if err != nil {
		fail(err)
	}
	if fastsse.Transport(tr) == viaHTTP {
		go func() { _ = (&http.Server{Handler: ep.HTTPHandler()}).Serve(ln) }()
	} else {
		go func() { _ = (&fasthttp.Server{Handler: ep.ServeFastHTTP, Logger: quietLog{}}).Serve(ln) }()
	}
	go f.publish(context.Background(), 1<<30, 5*time.Millisecond)
	fmt.Println("ready", ln.Addr())
	time.Sleep(time.Minute)
	os.Exit(3)
}

// startServerProcess starts the server process on addr and returns the
// address it listens on and a function that kills it (SIGKILL: no clean
// close, no retry hint) and waits for it to exit. The process is killed at
// the end of the test in any case. It may run on another goroutine than
// the test's.
func startServerProcess(t *testing.T, addr string, tr fastsse.Transport, epoch string) (string, func(), error) {
	cmd := exec.Command(os.Args[0], "-test.run=^TestHelperServerProcess$", "-test.count=1")
	cmd.Env = append(os.Environ(), fmt.Sprintf("%s=%s %d %s", serverEnv, addr, tr, epoch))
	out, err := cmd.StdoutPipe()
	if err != nil {
		return "", nil, err
	}
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		return "", nil, err
	}
	var once sync.Once
	kill := func() { once.Do(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() }) }
	t.Cleanup(kill)
	ready := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			if line := sc.Text(); strings.HasPrefix(line, "ready ") || strings.HasPrefix(line, "error:") {
				ready <- line
				break
			}
		}
		close(ready)
		_, _ = io.Copy(io.Discard, out)
	}()
	select {
	case line := <-ready:
		if got, ok := strings.CutPrefix(line, "ready "); ok {
			return got, kill, nil
		}
		kill()
		return "", nil, fmt.Errorf("server process: %q", line)
	case <-time.After(waitFor):
		kill()
		return "", nil, fmt.Errorf("the server process was not ready within %v", waitFor)
	}
}

// TestKilledServer: the server process is killed mid-stream and, 300 ms
// later, started again on the same port with an empty history. The client
// reads what the kernel still holds, retries through the refused
// connections, comes back with Last-Event-ID, hears the gap signal (the new
// process cannot resume it) with the id it asked from, and reads the new
// process' events from the position the signal gave, without a gap.
func TestKilledServer(t *testing.T) {
	eachTransport(t, func(t *testing.T, tr fastsse.Transport) {
		addr, kill, err := startServerProcess(t, "127.0.0.1:0", tr, "a")
		require.NoError(t, err)
		ctx, cancel := context.WithTimeout(context.Background(), 2*waitFor)
		defer cancel()
		var gaps []string
		var errs []error
		s := sseclient.Connect(ctx, "http://"+addr+"/", &sseclient.Options{
			Backoff: fast,
			OnGap:   func(id string) { gaps = append(gaps, id) },
			OnError: func(err error, _ time.Duration) { errs = append(errs, err) },
		})
		var restarted sync.WaitGroup
		defer restarted.Wait()
		// The processes' groups have epochs of their own: a's is the first
		// seen, b's the other.
		var a, b counter
		var lastA string
		for ev, err := range s.Events() {
			require.NoError(t, err)
			id := string(ev.ID)
			epoch, n, err := splitID(id)
			require.NoError(t, err)
			if a.epoch == "" || epoch == a.epoch {
				require.Zero(t, b.next, "an event of the killed process after the new one's")
				if a.next == 0 {
					a.next = n - 1 // the stream starts where the process was
				}
				require.NoError(t, a.add(id))
				lastA = id
				if a.next == 30 {
					kill()
					restarted.Go(func() {
						time.Sleep(300 * time.Millisecond)
						if _, _, err := startServerProcess(t, addr, tr, "b"); err != nil {
							t.Errorf("restart on %s: %v", addr, err)
							cancel()
						}
					})
				}
				continue
			}
			require.Equal(t, []string{lastA}, gaps, "the gap signal, with the id asked from, before the new process' events")
			if b.next == 0 {
				b.next = n - 1
			}
			require.NoError(t, b.add(id))
			if b.next >= 30 && len(gaps) == 1 {
				break
			}
		}
		assert.Equal(t, []string{lastA}, gaps)
		assert.NotEmpty(t, errs, "the kill and the refused connections were seen")
		t.Logf("errors until the new process answered: %d, first %v", len(errs), errs[0])
	})
}
