package loadtest

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"net/url"
	"strings"
	"time"
)

// Modes.
const (
	ModeFanout = "fanout" // connect all, then receive and measure delivery
	ModeIdle   = "idle"   // connect all, then hold them and measure memory
	ModeChurn  = "churn"  // connect, receive, disconnect, at a set rate
)

// IO strategies for reading the streams.
const (
	IOEpoll     = "epoll"     // a few goroutines share epoll sets (Linux)
	IOGoroutine = "goroutine" // one goroutine and a 4 KB buffer per connection
)

// Defaults.
const (
	DefaultDuration  = 30 * time.Second
	DefaultChurnHold = time.Second
	DefaultSettle    = time.Second
	DefaultTimeout   = 10 * time.Second
)

// Limits.
const (
	// MaxDuration is the longest measuring window Config accepts.
	MaxDuration = 10 * time.Minute
	// ConnsPerProc is how many connections one worker process holds by
	// default: below the 20,000 open files a process may have here.
	ConnsPerProc = 18000
	// portsPerSource is how many ports the tool uses per source address.
	// The machine has 28,232 ephemeral ports, but a connection that binds
	// its source address picks its port in bind(), and Linux's bind()
	// scans the even ports of the range first, one by one, leaving the odd
	// ones to connect(): past about 14,000 ports on one address every
	// bind() walks all the even ones before it tries an odd one, and the
	// connects crawl (measured: 14 workers of 17,858 connections, one
	// address each, stalled at 196,000 with the kernel using both cores).
	// So each address takes at most 12,000, within the even half.
	portsPerSource = 12000
	// timeWait is how long a port stays in TIME_WAIT after the client
	// closes first (churn).
	timeWait = 60 * time.Second
)

// Config is one run of the load generator.
type Config struct {
	URL         string        `json:"url"`
	Conns       int           `json:"conns"`        // connections (churn: at most this many at once)
	Duration    time.Duration `json:"duration"`     // measuring window
	Ramp        float64       `json:"ramp"`         // connections opened per second; 0: as fast as possible
	Mode        string        `json:"mode"`         // ModeFanout, ModeIdle or ModeChurn
	ChurnRate   float64       `json:"churn_rate"`   // churn: connects per second overall
	ChurnHold   time.Duration `json:"churn_hold"`   // churn: longest wait for an event before disconnecting
	Procs       int           `json:"procs"`        // worker processes; 0: one per ConnsPerProc connections
	AllowRemote bool          `json:"allow_remote"` // allow a target outside loopback
	ServerPIDs  []int         `json:"server_pids"`  // the server's processes: RSS and CPU from /proc
	Settle      time.Duration `json:"settle"`       // wait after connecting before measuring
	Timeout     time.Duration `json:"timeout"`      // connect + response header timeout
	IO          string        `json:"io"`           // IOEpoll or IOGoroutine; "" picks epoll where it exists
	SockBuf     int           `json:"sockbuf"`      // SO_RCVBUF and SO_SNDBUF of every connection, set before connect; 0: the kernel's

	// Slow readers (see readers.go).
	Slow       float64 `json:"slow"`        // fraction of the connections that are slow readers, 0 to <1
	SlowFactor float64 `json:"slow_factor"` // a slow reader reads at 1/SlowFactor of a fast one's byte rate
	SlowURL    string  `json:"slow_url"`    // the slow readers' stream URL(s); "": URL
	SlowRcvBuf int     `json:"slow_rcvbuf"` // a slow reader's socket receive buffer (SO_RCVBUF); 0: the kernel's
	Keyed      bool    `json:"keyed"`       // data is "TIME KEY ...": report the age of the value held per key

	// Set by Resolve.
	target  netip.AddrPort // the first URL's, which picks the source addresses
	targets []target       // one per URL
	slow    []target       // one per SlowURL; none: targets
	sources []netip.Addr
}

// target is one of the URLs: where to dial and what to ask.
type target struct {
	addr netip.AddrPort
	host string // Host header
	path string // request target
}

// Defaults fills zero fields with the documented defaults.
func (c *Config) Defaults() {
	if c.Mode == "" {
		c.Mode = ModeFanout
	}
	if c.Duration == 0 {
		c.Duration = DefaultDuration
	}
	if c.Conns == 0 {
		c.Conns = 100
	}
	if c.ChurnRate == 0 {
		c.ChurnRate = 100
	}
	if c.ChurnHold == 0 {
		c.ChurnHold = DefaultChurnHold
	}
	if c.Timeout == 0 {
		c.Timeout = DefaultTimeout
	}
	if c.IO == "" {
		c.IO = defaultIO
	}
	if c.Procs == 0 {
		c.Procs = (c.Conns + ConnsPerProc - 1) / ConnsPerProc
	}
	if c.SlowFactor == 0 {
		c.SlowFactor = DefaultSlowFactor
	}
}

// DefaultSlowFactor is how many times slower than a fast reader a slow one
// reads.
const DefaultSlowFactor = 20

// slowTargets are the slow readers' URLs.
func (c *Config) slowTargets() []target {
	if len(c.slow) > 0 {
		return c.slow
	}
	return c.targets
}

// Validate checks the fields, not the target (see Resolve).
func (c *Config) Validate() error {
	switch {
	case c.URL == "":
		return errors.New("-url is required")
	case c.Conns < 1:
		return errors.New("-c must be at least 1")
	case c.Duration < 0 || c.Duration > MaxDuration:
		return fmt.Errorf("-d must be between 0 and %v", MaxDuration)
	case c.Ramp < 0:
		return errors.New("-ramp must not be negative")
	case c.Mode != ModeFanout && c.Mode != ModeIdle && c.Mode != ModeChurn:
		return fmt.Errorf("-mode %q: want idle, fanout or churn", c.Mode)
	case c.ChurnRate <= 0:
		return errors.New("-churn-rate must be positive")
	case c.Procs < 1 || c.Procs > c.Conns:
		return errors.New("-procs must be between 1 and -c")
	case c.IO != IOEpoll && c.IO != IOGoroutine:
		return fmt.Errorf("-io %q: want epoll or goroutine", c.IO)
	case c.IO == IOEpoll && !haveEpoll:
		return errors.New("-io epoll is Linux only")
	case c.Timeout <= 0 || c.Settle < 0 || c.ChurnHold <= 0:
		return errors.New("-timeout, -settle and -churn-hold must be positive")
	case c.Slow < 0 || c.Slow >= 1:
		return errors.New("-slow must be at least 0 and less than 1")
	case c.SlowFactor < 1:
		return errors.New("-slow-factor must be at least 1")
	case c.SlowRcvBuf < 0:
		return errors.New("-slow-rcvbuf must not be negative")
	case c.Slow > 0 && c.Mode != ModeFanout:
		return errors.New("-slow needs -mode fanout")
	case c.SockBuf < 0:
		return errors.New("-sockbuf must not be negative")
	}
	per := (c.Conns + c.Procs - 1) / c.Procs
	if lim := openFileLimit(); lim > 0 && per+200 > lim {
		return fmt.Errorf("%d connections per process exceed the open-file limit (%d): raise -procs", per, lim)
	}
	return nil
}

// connectWindow bounds the connecting phase: every connection has had its
// first attempt, or this much time has passed.
func (c *Config) connectWindow() time.Duration {
	if c.Ramp > 0 {
		return time.Duration(float64(c.Conns)/c.Ramp*float64(time.Second)) + 30*time.Second
	}
	return 60 * time.Second
}

// Resolve parses the URLs (URL is one, or several separated by commas: the
// connections are spread over them, and one whose stream drops reconnects
// to the next), resolves their hosts and applies the loopback rule.
func (c *Config) Resolve(ctx context.Context) error {
	c.targets = c.targets[:0]
	for _, s := range strings.Split(c.URL, ",") {
		t, err := c.resolveOne(ctx, strings.TrimSpace(s))
		if err != nil {
			return err
		}
		c.targets = append(c.targets, t)
	}
	c.target = c.targets[0].addr
	c.slow = c.slow[:0]
	if c.SlowURL != "" {
		for _, s := range strings.Split(c.SlowURL, ",") {
			t, err := c.resolveOne(ctx, strings.TrimSpace(s))
			if err != nil {
				return err
			}
			c.slow = append(c.slow, t)
		}
	}
	return nil
}

func (c *Config) resolveOne(ctx context.Context, raw string) (target, error) {
	u, err := url.Parse(raw)
	if err != nil {
		return target{}, fmt.Errorf("-url: %w", err)
	}
	if u.Scheme != "http" {
		return target{}, fmt.Errorf("-url %q: only http:// is supported", raw)
	}
	port := u.Port()
	if port == "" {
		port = "80"
	}
	addrs, err := resolveHost(ctx, u.Hostname())
	if err != nil {
		return target{}, err
	}
	if err := checkLoopback(u.Hostname(), addrs, c.AllowRemote); err != nil {
		return target{}, err
	}
	ip := addrs[0]
	for _, a := range addrs {
		if a.Is4() {
			ip = a
			break
		}
	}
	p, err := net.LookupPort("tcp", port)
	if err != nil {
		return target{}, fmt.Errorf("-url port: %w", err)
	}
	return target{addr: netip.AddrPortFrom(ip, uint16(p)), host: u.Host, path: u.RequestURI()}, nil
}

// resolveHost returns the addresses of host (an IP literal or a name).
func resolveHost(ctx context.Context, host string) ([]netip.Addr, error) {
	if a, err := netip.ParseAddr(host); err == nil {
		return []netip.Addr{a.Unmap()}, nil
	}
	ips, err := net.DefaultResolver.LookupNetIP(ctx, "ip", host)
	if err != nil {
		return nil, fmt.Errorf("resolve %s: %w", host, err)
	}
	if len(ips) == 0 {
		return nil, fmt.Errorf("resolve %s: no address", host)
	}
	for i := range ips {
		ips[i] = ips[i].Unmap()
	}
	return ips, nil
}

// checkLoopback refuses addrs unless every one is in 127.0.0.0/8 or is ::1,
// or remote is allowed.
func checkLoopback(host string, addrs []netip.Addr, allowRemote bool) error {
	if allowRemote {
		return nil
	}
	for _, a := range addrs {
		if !a.IsLoopback() {
			return fmt.Errorf("target %s resolves to %s, which is not loopback: pass -allow-remote to load a remote server", host, a)
		}
	}
	return nil
}

// sourceAddrs returns the n source addresses starting at 127.0.0.first
// (first ≥ 2; carrying into the higher octets), or none when the target is
// not IPv4 loopback, where the kernel picks the source.
func sourceAddrs(target netip.Addr, first, n int) []netip.Addr {
	if !target.Is4() || !target.IsLoopback() {
		return nil
	}
	out := make([]netip.Addr, 0, n)
	for i := range n {
		v := uint32(127)<<24 | uint32(first+i)
		out = append(out, netip.AddrFrom4([4]byte{byte(v >> 24), byte(v >> 16), byte(v >> 8), byte(v)}))
	}
	return out
}

// sourcesNeeded is how many source addresses conns connections need,
// counting the ports that closed churn connections hold in TIME_WAIT.
func sourcesNeeded(conns int, churnRate float64, mode string) int {
	ports := conns
	if mode == ModeChurn {
		ports += int(churnRate * timeWait.Seconds())
	}
	return (ports + portsPerSource - 1) / portsPerSource
}
