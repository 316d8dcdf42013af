package main

import (
	"errors"
	"log"
	"net"
	"time"
)

// sockBufListener sets the kernel's send and receive buffer sizes of every
// connection it accepts (SO_SNDBUF and SO_RCVBUF, which Linux doubles for
// its bookkeeping), for the many idle streams of one machine: a socket
// whose buffers are set is no longer auto-tuned, so neither direction can
// grow to the system's tcp_rmem or tcp_wmem maximum, and the settings stay
// per socket, not system-wide (Pushpin's million-connection recipe reaches
// the same through tcp_rmem and tcp_wmem). The connection is returned as
// accepted, still a *net.TCPConn, so that the dense transport can take over
// its file descriptor.
//
// With noKeepAlive it also turns TCP keep-alive off, which Go's listeners
// turn on for every accepted connection (a probe every 15 s of silence):
// a stream's own heartbeats do that job, and on one machine holding a
// million idle streams the probes and their answers are 130,000 packets a
// second.
type sockBufListener struct {
	net.Listener
	size        int
	noKeepAlive bool
}

// Accept accepts a connection and sets its buffers (and keep-alive); a
// connection whose options cannot be set is still served, with a log line at most once a
// second.
func (l *sockBufListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return c, err
	}
	if tc, ok := c.(*net.TCPConn); ok {
		var errs []error
		if l.size > 0 {
			errs = append(errs, tc.SetReadBuffer(l.size), tc.SetWriteBuffer(l.size))
		}
		if l.noKeepAlive {
			errs = append(errs, tc.SetKeepAlive(false))
		}
		if err := errors.Join(errs...); err != nil {
			logEvery(time.Second, "sockbuf: %v", err)
		}
	}
	return c, nil
}

var lastLog time.Time

// logEvery logs at most once per d (Accept runs on one goroutine).
func logEvery(d time.Duration, format string, a ...any) {
	if time.Since(lastLog) >= d {
		lastLog = time.Now()
		log.Printf(format, a...)
	}
}

// withSockBuf wraps ln when size is positive or keepAlive is false.
func withSockBuf(ln net.Listener, size int, keepAlive bool) net.Listener {
	if size <= 0 && keepAlive {
		return ln
	}
	return &sockBufListener{Listener: ln, size: size, noKeepAlive: !keepAlive}
}
