// Command sse-bench is the load generator for Server-Sent Events servers:
// it opens many text/event-stream connections to a loopback server and
// measures connects, delivery latency, gaps and duplicates, and memory.
//
//	go run ./loadtest/sse-bench -url http://127.0.0.1:8080/feed -c 1000 -d 10s
//
// See README.md for the flags and the report's fields.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"runtime/pprof"
	"strconv"
	"strings"
	"syscall"

	"github.com/lasse-go/lasse/loadtest"
)

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

// run is the command: it parses args, runs the test, prints the table to
// stdout and progress to stderr, and returns the exit code.
func run(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("sse-bench", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var cfg loadtest.Config
	fs.StringVar(&cfg.URL, "url", "", "stream URL, e.g. http://127.0.0.1:8080/feed, or several separated by commas: connections are spread over them and one that drops reconnects to the next (required)")
	fs.IntVar(&cfg.Conns, "c", 100, "connections (churn: at most this many at once)")
	fs.DurationVar(&cfg.Duration, "d", loadtest.DefaultDuration, "measuring window; a hard cap, at most "+loadtest.MaxDuration.String())
	fs.Float64Var(&cfg.Ramp, "ramp", 0, "connections opened per second; 0: as fast as possible")
	fs.StringVar(&cfg.Mode, "mode", loadtest.ModeFanout, "idle (hold connections, measure memory), fanout (receive, measure delivery) or churn (connect, receive, disconnect)")
	fs.Float64Var(&cfg.ChurnRate, "churn-rate", 100, "churn: connects per second overall")
	fs.DurationVar(&cfg.ChurnHold, "churn-hold", loadtest.DefaultChurnHold, "churn: disconnect after this long when no event came")
	fs.IntVar(&cfg.Procs, "procs", 0, fmt.Sprintf("worker processes; 0: one per %d connections", loadtest.ConnsPerProc))
	fs.BoolVar(&cfg.AllowRemote, "allow-remote", false, "allow a target that is not loopback")
	fs.Func("server-pid", "the server's `pid[,pid...]`: report its RSS (and RSS per connection) and CPU from /proc, summed over the pids (prefork)", func(s string) error {
		for _, f := range strings.Split(s, ",") {
			pid, err := strconv.Atoi(strings.TrimSpace(f))
			if err != nil || pid <= 0 {
				return fmt.Errorf("bad pid %q", f)
			}
			cfg.ServerPIDs = append(cfg.ServerPIDs, pid)
		}
		return nil
	})
	fs.DurationVar(&cfg.Settle, "settle", loadtest.DefaultSettle, "wait after the last connect before measuring")
	fs.DurationVar(&cfg.Timeout, "timeout", loadtest.DefaultTimeout, "connect + response header timeout")
	fs.IntVar(&cfg.SockBuf, "sockbuf", 0, "set each connection's kernel receive and send buffers to this many `bytes` (SO_RCVBUF, SO_SNDBUF) before it connects, for many idle streams; 0: the kernel's defaults")
	fs.StringVar(&cfg.IO, "io", "", "epoll (Linux default: shared poll loops) or goroutine (one goroutine per connection)")
	fs.Float64Var(&cfg.Slow, "slow", 0, "fraction of the connections that are slow readers (0 to <1), reported apart from the fast ones")
	fs.Float64Var(&cfg.SlowFactor, "slow-factor", loadtest.DefaultSlowFactor, "a slow reader reads at 1/this of the byte rate of an average fast reader")
	fs.StringVar(&cfg.SlowURL, "slow-url", "", "the slow readers' stream URL (e.g. with a throttle query); default -url")
	fs.IntVar(&cfg.SlowRcvBuf, "slow-rcvbuf", 0, "a slow reader's socket receive buffer in bytes (SO_RCVBUF); 0: the kernel's")
	fs.BoolVar(&cfg.Keyed, "keyed", false, "event data is \"TIME KEY ...\" (examples/ticker): report the age of the value each reader holds per key")
	jsonPath := fs.String("json", "", "write the report as JSON to this file")
	plotPath := fs.String("plot", "", "write the latency distribution as an HDR percentile plot (SVG) to this `file.svg`")
	cpuProfile := fs.String("cpuprofile", "", "write the client's CPU profile (the parent process) to this file")
	worker := fs.String(loadtest.WorkerFlag, "", "internal: run as a worker process with this spec")
	fs.Usage = func() {
		fmt.Fprintf(stderr, "usage: sse-bench -url URL [flags]\n\nLoad a Server-Sent Events server on loopback; see loadtest/sse-bench/README.md.\n\n")
		fs.VisitAll(func(f *flag.Flag) {
			if f.Name == loadtest.WorkerFlag {
				return
			}
			name, usage := flag.UnquoteUsage(f)
			if name != "" {
				name = " " + name
			}
			fmt.Fprintf(stderr, "  -%s%s\n    \t%s", f.Name, name, usage)
			if f.DefValue != "" && f.DefValue != "0" && f.DefValue != "false" {
				fmt.Fprintf(stderr, " (default %s)", f.DefValue)
			}
			fmt.Fprintln(stderr)
		})
	}
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return 2
	}
	if *worker != "" {
		// Ctrl-C reaches the whole process group: the parent decides.
		signal.Ignore(os.Interrupt)
		if err := loadtest.RunWorker(*worker, os.Stdin, os.Stdout); err != nil {
			fmt.Fprintln(stderr, "sse-bench worker:", err)
			return 1
		}
		return 0
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "sse-bench: unexpected arguments %q\n", fs.Args())
		return 2
	}

	if *cpuProfile != "" {
		f, err := os.Create(*cpuProfile)
		if err != nil {
			fmt.Fprintln(stderr, "sse-bench:", err)
			return 2
		}
		defer f.Close()
		if err := pprof.StartCPUProfile(f); err != nil {
			fmt.Fprintln(stderr, "sse-bench:", err)
			return 2
		}
		defer pprof.StopCPUProfile()
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	opts := &loadtest.Options{Progress: stderr}
	var plot *os.File
	if *plotPath != "" {
		f, err := os.Create(*plotPath)
		if err != nil {
			fmt.Fprintln(stderr, "sse-bench:", err)
			return 2
		}
		plot, opts.Plot = f, f
	}
	res, err := loadtest.Run(ctx, cfg, opts)
	if plot != nil {
		if cerr := plot.Close(); cerr != nil && err == nil {
			err = cerr
		}
	}
	if res == nil {
		fmt.Fprintln(stderr, "sse-bench:", err)
		return 2
	}
	code := 0
	switch {
	case errors.Is(err, context.Canceled):
		fmt.Fprintln(stderr, "sse-bench: interrupted; the report covers the run so far")
		code = 1
	case err != nil:
		fmt.Fprintln(stderr, "sse-bench:", err)
		code = 1
	}
	if werr := res.WriteTable(stdout); werr != nil {
		code = 1
	}
	if *jsonPath != "" {
		if werr := res.WriteJSON(*jsonPath); werr != nil {
			fmt.Fprintln(stderr, "sse-bench:", werr)
			code = 1
		}
	}
	return code
}
