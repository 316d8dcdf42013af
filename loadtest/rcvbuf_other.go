//go:build !unix

package loadtest

import "syscall"

// setRcvBuf leaves the receive buffer to the system here.
func setRcvBuf(int) func(network, address string, c syscall.RawConn) error { return nil }
