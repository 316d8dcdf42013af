//go:build linux

package fastsse

import (
	"unsafe"

	"golang.org/x/sys/unix"
)

// The dense transport's writes are raw system calls: the socket is
// non-blocking, so a write never parks, and a raw call does not tell the
// Go scheduler it is in a system call (entersyscall, exitsyscall). A
// write to a loopback socket runs the receiver's side of TCP inline,
// about 10 µs; on a busy machine the kernel preempts the writer in it for
// longer. Through syscall.Syscall the writer's P is then seen in a system
// call, and sysmon hands it to another thread (futex wake-ups, thread
// switches) thousands of times per broadcast, and polls every 20 µs while
// it does. A raw call keeps the P, as running Go code would.

// denseIovMax is the most iovecs a dense send writes at once: the response
// head, the chunk size, the payload and the CRLF.
const denseIovMax = 4

// rawWritev is writev(2) on a non-blocking descriptor, by a raw system
// call. Empty elements of iov are skipped; iov has at most denseIovMax
// non-empty elements.
func rawWritev(fd int, iov [][]byte) (int, error) {
	var vs [denseIovMax]unix.Iovec
	n := 0
	for _, b := range iov {
		if len(b) == 0 {
			continue
		}
		if n == len(vs) {
			break // the rest goes in the caller's next call
		}
		vs[n].Base = &b[0]
		vs[n].SetLen(len(b))
		n++
	}
	if n == 0 {
		return 0, nil
	}
	r, _, e := unix.RawSyscall(unix.SYS_WRITEV, uintptr(fd), uintptr(unsafe.Pointer(&vs[0])), uintptr(n))
	if e != 0 {
		return 0, e
	}
	return int(r), nil
}

// rawWrite is write(2) on a non-blocking descriptor, by a raw system call.
func rawWrite(fd int, b []byte) (int, error) {
	if len(b) == 0 {
		return 0, nil
	}
	r, _, e := unix.RawSyscall(unix.SYS_WRITE, uintptr(fd), uintptr(unsafe.Pointer(&b[0])), uintptr(len(b)))
	if e != 0 {
		return 0, e
	}
	return int(r), nil
}
