//go:build linux

package serve

import (
	"net"
	"syscall"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func sockOpt(t *testing.T, c net.Conn, opt int) int {
	t.Helper()
	rc, err := c.(*net.TCPConn).SyscallConn()
	require.NoError(t, err)
	var v int
	var serr error
	require.NoError(t, rc.Control(func(fd uintptr) { v, serr = syscall.GetsockoptInt(int(fd), syscall.SOL_SOCKET, opt) }))
	require.NoError(t, serr)
	return v
}

// TestSocketOptions: an accepted connection has the buffers asked for
// (Linux reports twice the size set) and is still a *net.TCPConn; with no
// options the listener is left as it is.
func TestSocketOptions(t *testing.T) {
	raw, err := net.Listen("tcp4", "127.0.0.1:0")
	require.NoError(t, err)
	assert.Same(t, raw, SocketOptions{}.Wrap(raw))
	ln := SocketOptions{SendBuffer: 4096, ReceiveBuffer: 4096, NoKeepAlive: true}.Wrap(raw)
	defer ln.Close()
	client, err := net.Dial("tcp4", ln.Addr().String())
	require.NoError(t, err)
	defer client.Close()
	c, err := ln.Accept()
	require.NoError(t, err)
	defer c.Close()
	require.IsType(t, &net.TCPConn{}, c)
	assert.Equal(t, 8192, sockOpt(t, c, syscall.SO_RCVBUF))
	assert.Equal(t, 8192, sockOpt(t, c, syscall.SO_SNDBUF))
	assert.Greater(t, sockOpt(t, client, syscall.SO_RCVBUF), 8192, "the client's are the kernel's defaults")
	assert.Zero(t, sockOpt(t, c, syscall.SO_KEEPALIVE), "keep-alive off")
}
