package serve

import (
	"errors"
	"log"
	"net"
	"time"
)

// SocketOptions are set on every connection a listener wrapped by Wrap
// accepts.
//
// Buffers: a socket whose buffer is set is no longer auto-tuned, so that it
// cannot grow to the system's tcp_rmem or tcp_wmem maximum, and the
// setting stays per socket, not system-wide (Pushpin's million-connection
// recipe reaches the same through tcp_rmem and tcp_wmem). Linux doubles the
// figure for its bookkeeping. Small buffers save kernel memory on many idle
// streams, and keep a slow client's backlog in the server's queue, where
// conflation and the drop policies reach it: what the kernel holds, the
// client reads first, however old.
//
// Keep-alive: Go's listeners turn TCP keep-alive on for every accepted
// connection (a probe every 15 s of silence). A stream's heartbeats do that
// job; on one machine holding a million idle streams the probes and their
// answers are 130,000 packets a second.
type SocketOptions struct {
	SendBuffer    int  // SO_SNDBUF in bytes; 0: the kernel's
	ReceiveBuffer int  // SO_RCVBUF in bytes; 0: the kernel's
	NoKeepAlive   bool // turn TCP keep-alive off
}

// Wrap returns ln, setting o on every connection it accepts; ln itself when
// o sets nothing. An accepted connection is returned as it is (a
// *net.TCPConn, whose descriptor the dense transport takes over); one whose
// options cannot be set is served all the same, with a log line at most
// once a second.
func (o SocketOptions) Wrap(ln net.Listener) net.Listener {
	if o == (SocketOptions{}) {
		return ln
	}
	return &sockOptListener{Listener: ln, o: o}
}

type sockOptListener struct {
	net.Listener
	o       SocketOptions
	lastLog time.Time // Accept runs on one goroutine
}

func (l *sockOptListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return c, err
	}
	tc, ok := c.(*net.TCPConn)
	if !ok {
		return c, nil
	}
	var errs []error
	if l.o.SendBuffer > 0 {
		errs = append(errs, tc.SetWriteBuffer(l.o.SendBuffer))
	}
	if l.o.ReceiveBuffer > 0 {
		errs = append(errs, tc.SetReadBuffer(l.o.ReceiveBuffer))
	}
	if l.o.NoKeepAlive {
		errs = append(errs, tc.SetKeepAlive(false))
	}
	if err := errors.Join(errs...); err != nil && time.Since(l.lastLog) >= time.Second {
		l.lastLog = time.Now()
		log.Printf("socket options: %v", err)
	}
	return c, nil
}
