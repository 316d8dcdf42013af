// The peer servers honour the feed contract of examples/feed: each is built,
// started on 127.0.0.1:0, read by internal/ssetest's client, and stopped with
// SIGTERM.
package servers_test

import (
	"bufio"
	"bytes"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/lasse-go/lasse/internal/ssetest"
)

var servers = []string{"rawstream", "gosse", "r3labs"}

var bins struct {
	once sync.Once
	dir  string
	err  error
}

// build compiles the servers once per test binary into a temporary
// directory (removed by TestMain).
func build(t *testing.T) string {
	t.Helper()
	bins.once.Do(func() { bins.dir, bins.err = compile() })
	if bins.err != nil {
		t.Fatal(bins.err)
	}
	return bins.dir
}

func TestMain(m *testing.M) {
	code := m.Run()
	if bins.dir != "" {
		os.RemoveAll(bins.dir)
	}
	os.Exit(code)
}

func compile() (string, error) {
	dir, err := os.MkdirTemp("", "servers-test")
	if err != nil {
		return "", err
	}
	args := []string{"build", "-o", dir + string(filepath.Separator)}
	for _, s := range servers {
		args = append(args, "./"+s)
	}
	cmd := exec.Command(goTool(), args...)
	if out, err := cmd.CombinedOutput(); err != nil {
		return dir, fmt.Errorf("go build: %v\n%s", err, out)
	}
	return dir, nil
}

func goTool() string {
	if p, err := exec.LookPath("go"); err == nil {
		return p
	}
	return filepath.Join(os.Getenv("GOROOT"), "bin", "go")
}

var listening = regexp.MustCompile(`listening on http://([0-9.:]+)/`)

// start runs bin with args and returns the address it listens on; the
// cleanup stops it with SIGTERM and fails the test unless it exits 0
// within 15 s.
func start(t *testing.T, bin string, args ...string) string {
	t.Helper()
	cmd := exec.Command(bin, args...)
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	var log bytes.Buffer
	addr := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(stderr)
		for sc.Scan() {
			log.WriteString(sc.Text() + "\n")
			if m := listening.FindStringSubmatch(sc.Text()); m != nil {
				select {
				case addr <- m[1]:
				default:
				}
			}
		}
		exited <- cmd.Wait()
	}()
	t.Cleanup(func() {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		select {
		case err := <-exited:
			if err != nil {
				t.Errorf("%s: exit after SIGTERM: %v\n%s", filepath.Base(bin), err, log.String())
			}
		case <-time.After(15 * time.Second):
			_ = cmd.Process.Kill()
			<-exited
			t.Errorf("%s: still running 15 s after SIGTERM", filepath.Base(bin))
		}
	})
	select {
	case a := <-addr:
		return a
	case err := <-exited:
		t.Fatalf("%s exited before listening: %v\n%s", filepath.Base(bin), err, log.String())
	case <-time.After(10 * time.Second):
		t.Fatalf("%s: no listening line within 10 s", filepath.Base(bin))
	}
	return ""
}

// open opens the feed on addr with ssetest's client, which reads it as an
// EventSource would, on a goroutine of its own.
func open(t *testing.T, addr string) *ssetest.Client {
	t.Helper()
	c := ssetest.Dial(t, addr, "GET", "/feed").Start()
	if c.Status != http.StatusOK {
		t.Fatalf("status %d", c.Status)
	}
	if ct := c.Header("Content-Type"); !strings.HasPrefix(ct, "text/event-stream") {
		t.Fatalf("Content-Type %q", ct)
	}
	return c
}

func TestContract(t *testing.T) {
	dir := build(t)
	const size = 64
	for _, name := range servers {
		t.Run(name, func(t *testing.T) {
			addr := start(t, filepath.Join(dir, name), "-addr", "127.0.0.1:0", "-rate", "50", "-size", strconv.Itoa(size), "-heartbeat", "50ms")
			c := open(t, addr)
			began := time.Now().UnixNano()
			var prev uint64
			for i := range 2 {
				ev := c.Event(t)
				id, err := strconv.ParseUint(ev.ID, 10, 64)
				if err != nil || id == 0 {
					t.Fatalf("event %d: id %q is not a positive number", i, ev.ID)
				}
				if i == 1 && id != prev+1 {
					t.Fatalf("ids %d then %d: want consecutive", prev, id)
				}
				prev = id
				checkData(t, ev.Data, size, began-int64(time.Second))
			}
			// The heartbeat has been going on between events.
			deadline := time.Now().Add(5 * time.Second)
			beat := false
			for !beat && time.Now().Before(deadline) {
				bl, err := c.Next()
				if err != nil {
					t.Fatal(err)
				}
				beat = len(bl.Comments) > 0
			}
			if !beat {
				t.Error("no heartbeat comment within 5 s at -heartbeat 50ms")
			}
		})
	}
}

// A silent feed sends the response header at once and then only heartbeats.
func TestSilentFeed(t *testing.T) {
	dir := build(t)
	for _, name := range servers {
		t.Run(name, func(t *testing.T) {
			addr := start(t, filepath.Join(dir, name), "-addr", "127.0.0.1:0", "-rate", "0", "-heartbeat", "-1s")
			start := time.Now()
			c := open(t, addr)
			if took := time.Since(start); took > time.Second {
				t.Fatalf("the response header took %v", took)
			}
			time.Sleep(time.Second)
			if raw := c.Raw(); raw != "" {
				t.Fatalf("%q on a silent feed with heartbeats off", raw)
			}
		})
	}
}

func checkData(t *testing.T, data string, size int, notBefore int64) {
	t.Helper()
	ts, rest, ok := strings.Cut(data, " ")
	if !ok {
		t.Fatalf("data %q: no space after the time", data)
	}
	nanos, err := strconv.ParseInt(ts, 10, 64)
	if err != nil {
		t.Fatalf("data %q: %v", data, err)
	}
	if now := time.Now().UnixNano(); nanos < notBefore || nanos > now {
		t.Fatalf("send time %d not in [%d, %d]", nanos, notBefore, now)
	}
	if len(data) != size {
		t.Fatalf("data is %d bytes, want %d", len(data), size)
	}
	if strings.Trim(rest, "x") != "" {
		t.Fatalf("filler %q is not all x", rest)
	}
}
