//go:build linux

package fastsse

import (
	"bytes"
	"errors"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/sys/unix"
)

// socketPair returns a connected pair of non-blocking stream sockets whose
// writer has a small send buffer, so that writes go partial.
func socketPair(t *testing.T) (w, r int) {
	t.Helper()
	fds, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_STREAM|unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC, 0)
	require.NoError(t, err)
	t.Cleanup(func() { unix.Close(fds[0]); unix.Close(fds[1]) })
	require.NoError(t, unix.SetsockoptInt(fds[0], unix.SOL_SOCKET, unix.SO_SNDBUF, 4096))
	return fds[0], fds[1]
}

// drain reads everything readable from fd.
func drain(t *testing.T, fd int, into *bytes.Buffer) {
	t.Helper()
	buf := make([]byte, 64<<10)
	for {
		n, err := unix.Read(fd, buf)
		if errors.Is(err, unix.EAGAIN) {
			return
		}
		require.NoError(t, err)
		into.Write(buf[:n])
	}
}

// TestWritevFullPartial: what a full socket does not take comes back as the
// rest, exactly the bytes that did not go out, whatever element the write
// stopped in; and empty elements and more elements than one raw writev
// takes are written in order.
func TestWritevFullPartial(t *testing.T) {
	w, r := socketPair(t)
	var want bytes.Buffer
	var iov [][]byte
	for i := range 9 {
		b := bytes.Repeat([]byte{'a' + byte(i)}, 3000+i*977)
		iov = append(iov, b, nil) // an empty element after each
		want.Write(b)
	}
	var got bytes.Buffer
	rest, err := writevFull(w, iov)
	require.NoError(t, err)
	require.NotEmpty(t, rest, "the socket should take less than %d bytes at once", want.Len())
	for rounds := 0; len(rest) > 0; rounds++ {
		require.Less(t, rounds, 10000)
		drain(t, r, &got)
		rest, err = writevFull(w, rest)
		require.NoError(t, err)
	}
	drain(t, r, &got)
	assert.Equal(t, want.Len(), got.Len())
	assert.True(t, bytes.Equal(want.Bytes(), got.Bytes()), "the bytes arrive in order, none twice")
}

func TestRawWriteErrors(t *testing.T) {
	w, _ := socketPair(t)
	n, err := rawWrite(w, nil)
	assert.Zero(t, n)
	assert.NoError(t, err)
	n, err = rawWritev(w, [][]byte{nil, {}})
	assert.Zero(t, n)
	assert.NoError(t, err)
	require.NoError(t, unix.Shutdown(w, unix.SHUT_WR))
	_, err = rawWrite(w, []byte("x"))
	assert.ErrorIs(t, err, unix.EPIPE)
	_, err = rawWritev(w, [][]byte{[]byte("x")})
	assert.ErrorIs(t, err, unix.EPIPE)
}
