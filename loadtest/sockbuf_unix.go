//go:build unix

package loadtest

import (
	"errors"
	"syscall"
)

// setSockBuf sets the socket's receive and send buffers to n bytes.
func setSockBuf(fd uintptr, n int) error {
	return errors.Join(
		syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_RCVBUF, n),
		syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_SNDBUF, n))
}
