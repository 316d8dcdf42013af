//go:build linux

package loadtest

import (
	"net"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestDialerSockBuf: with -sockbuf the client's socket has the buffers
// asked for (Linux reports twice the size set) from before the connect;
// without it, the kernel's.
func TestDialerSockBuf(t *testing.T) {
	ln, err := net.Listen("tcp4", "127.0.0.1:0")
	require.NoError(t, err)
	defer ln.Close()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			c.Close()
		}
	}()
	rcvbuf := func(sockBuf int) (rcv, snd int) {
		c := Config{Timeout: time.Second, SockBuf: sockBuf}
		d := c.dialer(&net.TCPAddr{IP: net.IPv4(127, 0, 0, 1)})
		nc, err := d.Dial("tcp4", ln.Addr().String())
		require.NoError(t, err)
		defer nc.Close()
		rc, err := nc.(*net.TCPConn).SyscallConn()
		require.NoError(t, err)
		require.NoError(t, rc.Control(func(fd uintptr) {
			rcv, _ = syscall.GetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_RCVBUF)
			snd, _ = syscall.GetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_SNDBUF)
		}))
		return rcv, snd
	}
	rcv, snd := rcvbuf(4096)
	assert.Equal(t, 8192, rcv)
	assert.Equal(t, 8192, snd)
	rcv, _ = rcvbuf(0)
	assert.Greater(t, rcv, 8192)
}
