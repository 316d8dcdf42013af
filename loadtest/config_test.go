package loadtest

import (
	"context"
	"net/netip"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestCheckLoopback(t *testing.T) {
	addrs := func(ss ...string) []netip.Addr {
		var out []netip.Addr
		for _, s := range ss {
			out = append(out, netip.MustParseAddr(s))
		}
		return out
	}
	for _, tc := range []struct {
		addrs []netip.Addr
		ok    bool
	}{
		{addrs("127.0.0.1"), true},
		{addrs("127.255.1.2"), true},
		{addrs("::1"), true},
		{addrs("127.0.0.1", "::1"), true},
		{addrs("10.0.0.1"), false},
		{addrs("0.0.0.0"), false},
		{addrs("::"), false},
		{addrs("127.0.0.1", "192.0.2.1"), false},
		{addrs("::ffff:192.0.2.1"), false},
		{addrs("fe80::1"), false},
	} {
		err := checkLoopback("h", tc.addrs, false)
		if tc.ok {
			assert.NoError(t, err, "%v", tc.addrs)
		} else {
			assert.ErrorContains(t, err, "-allow-remote", "%v", tc.addrs)
			assert.NoError(t, checkLoopback("h", tc.addrs, true), "allowed: %v", tc.addrs)
		}
	}
}

func TestResolve(t *testing.T) {
	ctx := context.Background()
	c := Config{URL: "http://127.0.0.1:8081/feed?a=b"}
	require.NoError(t, c.Resolve(ctx))
	assert.Equal(t, "127.0.0.1:8081", c.target.String())
	assert.Equal(t, "/feed?a=b", c.targets[0].path)
	assert.Equal(t, "127.0.0.1:8081", c.targets[0].host)

	c = Config{URL: "http://127.0.0.1:8081/feed, http://127.0.0.2:8082/other"}
	require.NoError(t, c.Resolve(ctx), "several URLs")
	require.Len(t, c.targets, 2)
	assert.Equal(t, "127.0.0.2:8082", c.targets[1].addr.String())
	assert.Equal(t, "/other", c.targets[1].path)
	assert.Equal(t, "127.0.0.1:8081", c.target.String(), "the first picks the source addresses")
	c = Config{URL: "http://127.0.0.1:8081/feed,http://10.0.0.1/"}
	assert.Error(t, c.Resolve(ctx), "every URL is held to the loopback rule")

	c = Config{URL: "http://localhost:9/"}
	require.NoError(t, c.Resolve(ctx), "localhost is loopback")
	assert.True(t, c.target.Addr().IsLoopback())

	c = Config{URL: "http://[::1]/"}
	require.NoError(t, c.Resolve(ctx))
	assert.Equal(t, "[::1]:80", c.target.String())

	for _, u := range []string{"https://127.0.0.1/", "ws://127.0.0.1/", "http://192.0.2.7/", "http://[2001:db8::1]:80/", "http://127.0.0.1:notaport/"} {
		c = Config{URL: u}
		assert.Error(t, c.Resolve(ctx), u)
	}
	c = Config{URL: "http://192.0.2.7/", AllowRemote: true}
	assert.NoError(t, c.Resolve(ctx))
}

func TestValidate(t *testing.T) {
	ok := func() Config { c := Config{URL: "http://127.0.0.1/"}; c.Defaults(); return c }
	c := ok()
	require.NoError(t, c.Validate())
	assert.Equal(t, ModeFanout, c.Mode)
	assert.Equal(t, DefaultDuration, c.Duration)
	assert.Equal(t, 1, c.Procs)
	assert.EqualValues(t, DefaultSlowFactor, c.SlowFactor)

	c = Config{URL: "x", Conns: 40000}
	c.Defaults()
	assert.Equal(t, 3, c.Procs, "one process per 18,000")

	for name, mut := range map[string]func(*Config){
		"no url":       func(c *Config) { c.URL = "" },
		"long":         func(c *Config) { c.Duration = MaxDuration + time.Second },
		"negative d":   func(c *Config) { c.Duration = -time.Second },
		"mode":         func(c *Config) { c.Mode = "flood" },
		"ramp":         func(c *Config) { c.Ramp = -1 },
		"procs":        func(c *Config) { c.Procs = c.Conns + 1 },
		"io":           func(c *Config) { c.IO = "uring" },
		"churn rate":   func(c *Config) { c.ChurnRate = -1 },
		"open files":   func(c *Config) { c.Conns, c.Procs = 1<<31-1, 1 },
		"timeout":      func(c *Config) { c.Timeout = -1 },
		"no conns":     func(c *Config) { c.Conns = -1 },
		"churn hold":   func(c *Config) { c.ChurnHold = -1 },
		"settle":       func(c *Config) { c.Settle = -1 },
		"zero procs??": func(c *Config) { c.Procs = -1 },
		"slow < 0":     func(c *Config) { c.Slow = -0.1 },
		"all slow":     func(c *Config) { c.Slow = 1 },
		"slow factor":  func(c *Config) { c.SlowFactor = 0.5 },
		"slow rcvbuf":  func(c *Config) { c.SlowRcvBuf = -1 },
		"slow churn":   func(c *Config) { c.Slow, c.Mode = 0.1, ModeChurn },
		"sockbuf":      func(c *Config) { c.SockBuf = -1 },
	} {
		c := ok()
		mut(&c)
		assert.Error(t, c.Validate(), name)
	}
}

func TestSources(t *testing.T) {
	lo := netip.MustParseAddr("127.0.0.1")
	assert.Equal(t, []netip.Addr{netip.MustParseAddr("127.0.0.2"), netip.MustParseAddr("127.0.0.3")}, sourceAddrs(lo, 2, 2))
	assert.Equal(t, netip.MustParseAddr("127.0.1.0"), sourceAddrs(lo, 256, 1)[0], "carries into the next octet")
	assert.Nil(t, sourceAddrs(netip.MustParseAddr("::1"), 2, 1))
	assert.Nil(t, sourceAddrs(netip.MustParseAddr("192.0.2.1"), 2, 1))

	assert.Equal(t, 1, sourcesNeeded(12000, 0, ModeFanout))
	assert.Equal(t, 2, sourcesNeeded(18000, 0, ModeFanout), "within the even half of the ephemeral range")
	assert.Equal(t, 3, sourcesNeeded(30000, 0, ModeFanout))
	assert.Equal(t, 3, sourcesNeeded(1000, 500, ModeChurn), "60 s of TIME_WAIT at 500/s")

	c := Config{URL: "http://127.0.0.1/", Conns: 40001, Ramp: 4000.1, Mode: ModeFanout}
	c.Defaults()
	sp := specs(c)
	require.Len(t, sp, 3)
	total, first := 0, 2
	for _, s := range sp {
		total += s.Config.Conns
		assert.Equal(t, first, s.SourceFirst, "distinct ranges")
		first += s.SourceCount
		assert.InDelta(t, 4000.1*float64(s.Config.Conns)/40001, s.Config.Ramp, 1e-9)
	}
	assert.Equal(t, 40001, total)
	assert.Equal(t, 13334, sp[0].Config.Conns)
}
