//go:build !linux

package loadtest

import (
	"errors"
	"net"
)

const (
	haveEpoll = false
	defaultIO = IOGoroutine
)

// poller exists only on Linux; Config.Validate refuses -io epoll elsewhere.
type poller struct{}

func newPoller(*runner, int, *shard) (*poller, error) {
	return nil, errors.New("epoll is Linux only")
}

func (*poller) run()   {}
func (*poller) close() {}

func closeFD(int) {}

func (r *runner) attach(c *conn, nc net.Conn) {
	_ = nc.Close()
	r.ended(c, causeOther, true)
}
