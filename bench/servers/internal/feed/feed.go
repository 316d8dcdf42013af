// Package feed is the contract the peer servers share with examples/feed:
// the flags, the event payload, the publisher's clock and the process's
// life (listen, log the address, stop on SIGINT or SIGTERM).
//
// GET /feed streams. A publisher sends -rate events per second of -size
// bytes to every subscriber; each event's data is the send time in Unix
// nanoseconds, a space, and 'x' filler up to -size bytes; each event has the
// next id of one sequence 1, 2, 3, ... A comment goes out every -heartbeat
// (negative: none).
package feed

import (
	"context"
	"flag"
	"log"
	"net"
	"os"
	"os/signal"
	"strconv"
	"syscall"
	"time"
)

// Grace bounds a server's shutdown after SIGINT or SIGTERM.
const Grace = 10 * time.Second

// Config is the flags every server takes.
type Config struct {
	Addr      string
	Rate      float64
	Size      int
	Heartbeat time.Duration
}

// Flags registers the shared flags on fs, with the defaults of examples/feed.
func Flags(fs *flag.FlagSet) *Config {
	c := &Config{}
	fs.StringVar(&c.Addr, "addr", "127.0.0.1:8080", "address to listen on")
	fs.Float64Var(&c.Rate, "rate", 1, "events per second to every subscriber")
	fs.IntVar(&c.Size, "size", 64, "bytes of data per event")
	fs.DurationVar(&c.Heartbeat, "heartbeat", 15*time.Second, "heartbeat interval; negative turns heartbeats off")
	return c
}

// AppendPayload appends the send time, a space, and filler up to size bytes
// in all (never shorter than the time and the space).
func AppendPayload(dst []byte, nanos int64, size int) []byte {
	start := len(dst)
	dst = strconv.AppendInt(dst, nanos, 10)
	dst = append(dst, ' ')
	for len(dst)-start < size {
		dst = append(dst, 'x')
	}
	return dst
}

// Every calls fn once per period of a ticker at rate per second until ctx is
// done. A ticker drops ticks a slow fn misses, as examples/feed's publisher
// does. rate ≤ 0: it returns at once.
func Every(ctx context.Context, rate float64, fn func()) {
	if rate <= 0 {
		return
	}
	EveryInterval(ctx, time.Duration(float64(time.Second)/rate), fn)
}

// EveryInterval calls fn every d until ctx is done; d ≤ 0: it returns at once.
func EveryInterval(ctx context.Context, d time.Duration, fn func()) {
	if d <= 0 {
		return
	}
	t := time.NewTicker(d)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		fn()
	}
}

// SignalContext is done on SIGINT or SIGTERM.
func SignalContext() (context.Context, context.CancelFunc) {
	return signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
}

// Listen listens on addr (TCP) and logs the bound address in the form
// "pid N listening on http://ADDR/", which scripts and tests read.
func Listen(name, addr string) (net.Listener, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, err
	}
	log.Printf("pid %d listening on http://%s/ (%s)", os.Getpid(), ln.Addr(), name)
	return ln, nil
}
