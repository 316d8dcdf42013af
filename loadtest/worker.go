package loadtest

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os/exec"
	"sync"
	"time"
)

// The worker protocol. The parent writes commands to the worker's stdin,
// one per line: "measure" (start the window) and "stop" (stop and report).
// The worker writes to stdout every progressEvery "progress " + snapshot
// as JSON, and at the end "result " + partial as JSON. A worker whose stdin
// reaches EOF (the parent is gone) stops and exits.
const (
	cmdMeasure     = "measure"
	cmdStop        = "stop"
	prefixProgress = "progress "
	prefixResult   = "result "
	// progressEvery is how often a worker reports its counters: often
	// enough that the parent sees the end of the connect phase soon.
	progressEvery = 200 * time.Millisecond
)

func marshalSpec(s workerSpec) (string, error) {
	b, err := json.Marshal(s)
	return string(b), err
}

// RunWorker runs one worker process's share of a run, as told by spec
// (from the parent's command line), taking commands from in and writing
// progress and the result to out. It returns when the parent says stop or
// in ends; it never runs longer than the run's own time bounds plus a
// minute.
func RunWorker(spec string, in io.Reader, out io.Writer) error {
	var s workerSpec
	if err := json.Unmarshal([]byte(spec), &s); err != nil {
		return fmt.Errorf("worker spec: %w", err)
	}
	s.Config.Defaults()
	if err := s.Config.Validate(); err != nil {
		return err
	}
	r, err := s.start(context.Background())
	if err != nil {
		return err
	}
	cmds := make(chan string)
	done := make(chan struct{})
	defer close(done)
	go func() {
		defer close(cmds)
		sc := bufio.NewScanner(in)
		for sc.Scan() {
			select {
			case cmds <- sc.Text():
			case <-done:
				return
			}
		}
	}()
	limit := time.NewTimer(s.Config.connectWindow() + s.Config.Settle + s.Config.Duration + time.Minute)
	defer limit.Stop()
	tick := time.NewTicker(progressEvery)
	defer tick.Stop()
	w := bufio.NewWriter(out)
	send := func(prefix string, v any) error {
		b, err := json.Marshal(v)
		if err != nil {
			return err
		}
		w.WriteString(prefix)
		w.Write(b)
		w.WriteByte('\n')
		return w.Flush()
	}
	for {
		select {
		case <-tick.C:
			if err := send(prefixProgress, r.progress()); err != nil {
				r.stop()
				return err
			}
		case c, ok := <-cmds:
			switch {
			case !ok:
				r.stop()
				return errors.New("worker: parent gone (stdin closed)")
			case c == cmdMeasure:
				r.measure()
			case c == cmdStop:
				return send(prefixResult, r.stop())
			}
		case <-limit.C:
			r.stop()
			return errors.New("worker: time limit reached without stop")
		}
	}
}

// procWorker is the parent's handle on a worker process.
type procWorker struct {
	cmd    *exec.Cmd
	stdin  io.WriteCloser
	result chan *partial
	exited chan struct{} // stdout is done
	mu     sync.Mutex
	last   snapshot
	err    error
}

// startWorkerCmd starts cmd as a worker: stdin and stdout are the
// protocol's pipes, stderr goes to logw.
func startWorkerCmd(cmd *exec.Cmd, logw io.Writer) (*procWorker, error) {
	w := &procWorker{cmd: cmd, result: make(chan *partial, 1), exited: make(chan struct{})}
	var err error
	if w.stdin, err = cmd.StdinPipe(); err != nil {
		return nil, err
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	cmd.Stderr = logw
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start worker: %w", err)
	}
	go w.read(stdout)
	return w, nil
}

func (w *procWorker) read(stdout io.Reader) {
	defer close(w.exited)
	sc := bufio.NewScanner(stdout)
	sc.Buffer(make([]byte, 64<<10), 16<<20)
	for sc.Scan() {
		line := sc.Bytes()
		switch {
		case bytes.HasPrefix(line, []byte(prefixProgress)):
			var p snapshot
			if json.Unmarshal(line[len(prefixProgress):], &p) == nil {
				w.mu.Lock()
				w.last = p
				w.mu.Unlock()
			}
		case bytes.HasPrefix(line, []byte(prefixResult)):
			p := new(partial)
			if err := json.Unmarshal(line[len(prefixResult):], p); err != nil {
				w.mu.Lock()
				w.err = fmt.Errorf("worker result: %w", err)
				w.mu.Unlock()
				continue
			}
			w.result <- p
		}
	}
}

// errWorkerExited is what progress reports for a worker that has exited
// before it was told to stop.
var errWorkerExited = errors.New("exited before the end of the run (see its stderr)")

func (w *procWorker) progress() (snapshot, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.err == nil {
		select {
		case <-w.exited:
			w.err = errWorkerExited
		default:
		}
	}
	return w.last, w.err
}

func (w *procWorker) measure() error {
	_, err := io.WriteString(w.stdin, cmdMeasure+"\n")
	return err
}

// stop asks the worker for its result, then waits for it to exit (killing
// it after 30 s).
func (w *procWorker) stop() (*partial, error) {
	_, werr := io.WriteString(w.stdin, cmdStop+"\n")
	var p *partial
	t := time.NewTimer(30 * time.Second)
	defer t.Stop()
	select {
	case p = <-w.result:
	case <-w.exited:
		select {
		case p = <-w.result:
		default:
		}
	case <-t.C:
	}
	_ = w.stdin.Close() // a worker that has not stopped yet stops at EOF
	select {
	case <-w.exited:
	case <-time.After(5 * time.Second):
		_ = w.cmd.Process.Kill()
		<-w.exited
	}
	err := w.cmd.Wait()
	if p == nil {
		return nil, fmt.Errorf("no result (%v, %v)", werr, err)
	}
	return p, nil
}
