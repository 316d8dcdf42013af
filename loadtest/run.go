package loadtest

import (
	"context"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"runtime"
	"sync"
	"time"
)

// Options are the parts of a run that are not figures: where progress goes
// and how worker processes start. nil means defaults.
type Options struct {
	// Progress receives the live progress line each second and warnings;
	// nil discards them.
	Progress io.Writer
	// WorkerCommand returns the command that runs one worker process with
	// the given spec (it must call RunWorker with it, stdin and stdout).
	// nil: this executable with the arguments "-worker" and spec.
	WorkerCommand func(spec string) *exec.Cmd
	// Plot, when set, receives the run's latency distribution as an HDR
	// percentile plot, an SVG document, once the run is over.
	Plot io.Writer
}

// WorkerFlag is the hidden flag that makes the sse-bench command a worker.
const WorkerFlag = "worker"

// worker is one process's share of the connections, in this process or in
// a child.
type worker interface {
	progress() (snapshot, error)
	measure() error
	stop() (*partial, error)
}

type localWorker struct{ r *runner }

func (w localWorker) progress() (snapshot, error) { return w.r.progress(), nil }
func (w localWorker) measure() error              { w.r.measure(); return nil }
func (w localWorker) stop() (*partial, error)     { return w.r.stop(), nil }

// workerSpec is what a worker process is told: its share of the run.
type workerSpec struct {
	Config      Config `json:"config"`
	SourceFirst int    `json:"source_first"` // first source address 127.0.0.SourceFirst
	SourceCount int    `json:"source_count"`
}

// start builds the runner of spec.
func (s *workerSpec) start(ctx context.Context) (*runner, error) {
	cfg := s.Config
	if err := cfg.Resolve(ctx); err != nil {
		return nil, err
	}
	cfg.sources = sourceAddrs(cfg.target.Addr(), s.SourceFirst, s.SourceCount)
	ds := []net.Dialer{cfg.dialer(nil)}
	if len(cfg.sources) > 0 {
		ds = ds[:0]
		for _, a := range cfg.sources {
			ds = append(ds, cfg.dialer(srcAddr(a)))
		}
	}
	r, err := newRunner(&cfg, ds)
	if err != nil {
		return nil, err
	}
	r.run()
	return r, nil
}

// specs splits cfg over cfg.Procs workers: connections, ramp and churn rate
// in proportion, and distinct source address ranges from 127.0.0.2.
func specs(cfg Config) []workerSpec {
	out := make([]workerSpec, cfg.Procs)
	next := 2
	for i := range out {
		share := cfg.Conns / cfg.Procs
		if i < cfg.Conns%cfg.Procs {
			share++
		}
		c := cfg
		f := float64(share) / float64(cfg.Conns)
		c.Conns, c.Procs = share, 1
		c.Ramp *= f
		c.ChurnRate *= f
		n := sourcesNeeded(share, c.ChurnRate, c.Mode)
		out[i] = workerSpec{Config: c, SourceFirst: next, SourceCount: n}
		next += n
	}
	return out
}

// Run runs the load test described by cfg and returns its report. It
// connects, settles, measures for cfg.Duration, and stops; when ctx is done
// it stops early and reports what it has. Every phase is bounded in time.
func Run(ctx context.Context, cfg Config, opt *Options) (*Result, error) {
	if opt == nil {
		opt = &Options{}
	}
	cfg.Defaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if err := cfg.Resolve(ctx); err != nil {
		return nil, err
	}
	// A worker that dies ends the run like an interruption, with its error.
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	var logw io.Writer = io.Discard
	if opt.Progress != nil {
		// Workers' stderr and the progress lines share it.
		logw = &lockedWriter{w: opt.Progress}
	}
	res := &Result{Mode: cfg.Mode, URL: cfg.URL, Conns: cfg.Conns, Procs: cfg.Procs, IO: cfg.IO, ServerPIDs: cfg.ServerPIDs}
	warn := func(format string, a ...any) {
		s := fmt.Sprintf(format, a...)
		res.Warnings = append(res.Warnings, s)
		fmt.Fprintf(logw, "warning: %s\n", s)
	}
	server := len(cfg.ServerPIDs) > 0
	if server {
		if res.ServerRSSBefore = procsRSS(cfg.ServerPIDs); res.ServerRSSBefore == 0 {
			warn("cannot read /proc/PID/status of %v: no server figures", cfg.ServerPIDs)
		}
	}
	if !cfg.target.Addr().Is4() || !cfg.target.Addr().IsLoopback() {
		if per := (cfg.Conns + cfg.Procs - 1) / cfg.Procs; per > portsPerSource {
			warn("target %s is not IPv4 loopback: no 127.0.0.x source addresses, and %d connections per process may run out of ports", cfg.target, per)
		}
	}

	var workers []worker
	// stopAll stops the workers all at once: each closes its connections
	// as it stops, and stopped one after another the last ones passed
	// their own time limit (56 workers of 17,858 connections each).
	stopAll := func() []*partial {
		got := make([]*partial, len(workers))
		errs := make([]error, len(workers))
		var wg sync.WaitGroup
		for i, w := range workers {
			wg.Go(func() { got[i], errs[i] = w.stop() })
		}
		wg.Wait()
		var ps []*partial
		for i, p := range got {
			if errs[i] != nil {
				warn("worker %d: %v", i, errs[i])
				continue
			}
			ps = append(ps, p)
		}
		return ps
	}
	for _, s := range specs(cfg) {
		var w worker
		var err error
		if cfg.Procs == 1 {
			var r *runner
			if r, err = s.start(ctx); err == nil {
				w = localWorker{r}
			}
		} else {
			w, err = startProc(s, opt, logw)
		}
		if err != nil {
			stopAll()
			return nil, err
		}
		workers = append(workers, w)
	}

	m := &monitor{cfg: &cfg, workers: workers, out: logw, start: time.Now(), warn: warn, res: res, fail: cancel}
	m.last = time.Now()

	// Connect: until every conn has had its first attempt (churn: at once).
	interrupted := false
	if cfg.Mode != ModeChurn {
		deadline := m.start.Add(cfg.connectWindow())
		if !m.wait(ctx, "connect", deadline, func(p snapshot) bool { return p.Tried >= int64(cfg.Conns) }) {
			interrupted = ctx.Err() != nil
			if !interrupted {
				warn("connect phase cut at %v: %d of %d connections tried", cfg.connectWindow(), m.cur.Tried, cfg.Conns)
			}
		}
		res.ConnS = round3(time.Since(m.start).Seconds())
		if !interrupted && cfg.Settle > 0 {
			interrupted = !m.wait(ctx, "settle", time.Now().Add(cfg.Settle), nil) && ctx.Err() != nil
		}
	}
	var openAtRSS int64
	if server {
		res.ServerRSSOpen = procsRSS(cfg.ServerPIDs)
		m.sum()
		openAtRSS = m.cur.Open
	}

	// Measure.
	var ps []*partial
	if !interrupted {
		for i, w := range workers {
			if err := w.measure(); err != nil {
				warn("worker %d: %v", i, err)
			}
		}
		wStart := time.Now()
		srvCPU := procsCPU(cfg.ServerPIDs)
		m.sum() // the CPU and connects baseline of the window
		cpu0, opened0 := m.cur.CPU, m.cur.Opened
		m.saturated = 0
		if !m.wait(ctx, "measure", wStart.Add(cfg.Duration), nil) && ctx.Err() != nil {
			warn("interrupted: the window is %.1f s, not %v", time.Since(wStart).Seconds(), cfg.Duration)
		}
		m.poll("measure") // the last line, and the window's end figures
		res.Window = round3(time.Since(wStart).Seconds())
		if server {
			res.ServerRSSEnd = procsRSS(cfg.ServerPIDs)
			res.ServerCPUCores = round3((procsCPU(cfg.ServerPIDs) - srvCPU).Seconds() / res.Window)
		}
		res.ClientCPUCores = round3((m.cur.CPU - cpu0) / res.Window)
		res.ConnectsPerS = round1(float64(m.cur.Opened-opened0) / res.Window)
		res.ClientSaturatedS = m.saturated
	}
	ps = stopAll()
	if err := res.merge(ps); err != nil {
		return nil, err
	}
	if res.WindowEvents > 0 {
		res.ClientCPUPerEvUS = round3(res.ClientCPUCores * res.Window / float64(res.WindowEvents) * 1e6)
	}
	if server && cfg.Mode != ModeChurn && res.ServerRSSBefore > 0 && openAtRSS > 0 {
		res.ServerRSSPerConn = round1(float64(res.ServerRSSOpen-res.ServerRSSBefore) / float64(openAtRSS))
	}
	if interrupted {
		warn("interrupted before the measuring window")
	}
	if res.ClientSaturatedS > 0 {
		warn("client CPU saturated for %d s of the window: the figures measure the client, not only the server (use -procs or a lower -c)", res.ClientSaturatedS)
	}
	if opt.Plot != nil {
		if err := writePlot(opt.Plot, res, ps); err != nil {
			return res, fmt.Errorf("plot: %w", err)
		}
	}
	if ctx.Err() != nil {
		return res, context.Cause(ctx)
	}
	if len(ps) < len(workers) {
		return res, fmt.Errorf("%d of %d workers did not report", len(workers)-len(ps), len(workers))
	}
	return res, nil
}

// monitor polls the workers, prints the progress line once a second, and
// watches the client's CPU.
type monitor struct {
	cfg       *Config
	workers   []worker
	out       io.Writer
	warn      func(string, ...any)
	res       *Result
	start     time.Time
	cur, prev snapshot   // sums over workers
	per       []snapshot // per worker, from the last sum
	prevPer   []snapshot // per worker, at the last progress line
	last      time.Time
	saturated int
	warned    bool
	fail      context.CancelCauseFunc // a worker failed
}

// wait polls until done is true (nil: never), the deadline passes, or ctx
// is done; it reports whether it ended by done or the deadline.
func (m *monitor) wait(ctx context.Context, phase string, deadline time.Time, done func(snapshot) bool) bool {
	t := time.NewTicker(100 * time.Millisecond)
	defer t.Stop()
	for {
		if time.Since(m.last) >= time.Second {
			m.poll(phase)
		}
		if done != nil {
			m.sum()
			if done(m.cur) {
				return true
			}
		}
		if !time.Now().Before(deadline) {
			return done == nil
		}
		select {
		case <-ctx.Done():
			return false
		case <-t.C:
		}
	}
}

// sum refreshes cur from the workers without printing.
func (m *monitor) sum() {
	var s snapshot
	m.per = m.per[:0]
	for i, w := range m.workers {
		p, err := w.progress()
		if err != nil {
			m.fail(fmt.Errorf("worker %d: %w", i, err))
		}
		s.add(p)
		m.per = append(m.per, p)
	}
	m.cur = s
}

// poll refreshes cur, prints the progress line and checks the client's CPU:
// a process that used ≥ 90% of its GOMAXPROCS over the last second, or all
// processes together ≥ 90% of the machine's CPUs, is saturated.
func (m *monitor) poll(phase string) {
	m.sum()
	now := time.Now()
	dt := now.Sub(m.last).Seconds()
	line := progressLine(phase, now.Sub(m.start).Seconds(), m.cfg.Conns, m.cur, m.prev, dt)
	// A short interval (the last line of a window) says nothing: a burst
	// of a few milliseconds may well use every core.
	if len(m.prevPer) == len(m.per) && dt >= 0.5 {
		used := (m.cur.CPU - m.prev.CPU) / dt
		sat := used >= 0.9*float64(runtime.NumCPU())
		for i, p := range m.per {
			if p.Procs > 0 && (p.CPU-m.prevPer[i].CPU)/dt >= 0.9*float64(p.Procs) {
				sat = true
			}
		}
		if sat {
			line += "  CLIENT CPU SATURATED"
			if phase == "measure" {
				m.saturated++
			}
			if !m.warned {
				m.warned = true
				fmt.Fprintf(m.out, "warning: the client's own CPU is saturated (%.2f cores): it may be the bottleneck\n", used)
			}
		}
	}
	fmt.Fprintln(m.out, line)
	m.prev, m.last = m.cur, now
	m.prevPer = append(m.prevPer[:0], m.per...)
}

// startProc starts a worker process for s.
func startProc(s workerSpec, opt *Options, logw io.Writer) (worker, error) {
	spec, err := marshalSpec(s)
	if err != nil {
		return nil, err
	}
	var cmd *exec.Cmd
	if opt.WorkerCommand != nil {
		cmd = opt.WorkerCommand(spec)
	} else {
		exe, err := os.Executable()
		if err != nil {
			return nil, err
		}
		cmd = exec.Command(exe, "-"+WorkerFlag, spec)
	}
	return startWorkerCmd(cmd, logw)
}

// lockedWriter serializes writes to w.
type lockedWriter struct {
	mu sync.Mutex
	w  io.Writer
}

func (l *lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}
