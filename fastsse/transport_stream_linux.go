//go:build linux

package fastsse

import (
	"errors"
	"net"
	"syscall"

	"golang.org/x/sys/unix"
)

// peerClosed reports whether the client has closed its side of raw, by
// peeking at the socket without reading: a FIN or a reset shows at once.
// The stream transport asks this before each heartbeat, so a gone client is
// noticed within one heartbeat interval rather than at the third write
// after it left (the first write only draws the peer's reset, the second
// fails in fasthttp's connection goroutine, the third in the stream's
// writer). fasthttp does not read a connection while it writes a response,
// so the peek competes with no reader. A connection that is not a plain
// socket (TLS, fasthttp's per-IP wrapper) is never reported closed.
//
// The peek runs in RawConn.Control, not RawConn.Read: Read first checks
// the connection's read deadline, and fasthttp leaves the deadline of
// Server.ReadTimeout on the connection once it has read the request, so
// after ReadTimeout every Read fails with "i/o timeout" without peeking,
// and a client that left was then noticed only when the third write
// failed (45–57 s at a 15 s heartbeat).
func peerClosed(raw net.Conn) bool {
	sc, ok := raw.(syscall.Conn)
	if !ok {
		return false
	}
	rc, err := sc.SyscallConn()
	if err != nil {
		return false
	}
	closed := false
	var b [1]byte
	_ = rc.Control(func(fd uintptr) {
		n, _, err := unix.Recvfrom(int(fd), b[:], unix.MSG_PEEK|unix.MSG_DONTWAIT)
		closed = (n == 0 && err == nil) || errors.Is(err, unix.ECONNRESET)
	})
	return closed
}
