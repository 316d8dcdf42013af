package fastsse

import (
	"io"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// fakeTurn is a turner whose serve sends the batches it is given and
// records how the stream ended.
type fakeTurn struct {
	s       *streamTransport
	batches []string
	ended   error
	closes  int
	done    chan struct{} // closed by the first close
}

func (f *fakeTurn) serve(_, _ <-chan struct{}) {
	for _, b := range f.batches {
		if err := f.s.send([]byte(b)); err != nil {
			f.close(err)
			return
		}
	}
	f.close(ErrStopped)
}
func (f *fakeTurn) begin() error         { return nil }
func (f *fakeTurn) next() error          { return nil }
func (f *fakeTurn) fail(err error) error { return err }
func (f *fakeTurn) close(reason error) {
	f.closes++
	if f.closes == 1 {
		f.ended = reason
		close(f.done)
	}
}

func newFakeBody(batches ...string) (*streamBody, *fakeTurn) {
	s := &streamTransport{wakeup: make(wakeup, 1), stall: stall{core: &core{epoch: time.Now()}}}
	ft := &fakeTurn{s: s, batches: batches, done: make(chan struct{})}
	return &streamBody{s: s, t: ft}, ft
}

// writes records each Write: fasthttp's chunk writer makes each one a chunk.
type writes []string

func (w *writes) Write(p []byte) (int, error) { *w = append(*w, string(p)); return len(p), nil }

func TestStreamBodyWriteTo(t *testing.T) {
	b, ft := newFakeBody("", "data: a\n\n", "data: b\n\n")
	var w writes
	_, err := b.WriteTo(&w)
	require.NoError(t, err)
	assert.Equal(t, writes{"data: a\n\n", "data: b\n\n"}, w, "one Write per non-empty batch")
	require.NoError(t, b.Close())
	assert.Equal(t, 1, ft.closes, "Close after WriteTo ends nothing more")
	assert.ErrorIs(t, ft.ended, ErrStopped)
}

// fasthttp calls Close without WriteTo when writing the head failed: the
// stream must end there, once.
func TestStreamBodyCloseWithoutWriteTo(t *testing.T) {
	b, ft := newFakeBody("data: a\n\n")
	require.NoError(t, b.Close())
	assert.Equal(t, 1, ft.closes)
	assert.ErrorIs(t, ft.ended, ErrClientGone)
	require.NoError(t, b.Close())
	assert.Equal(t, 1, ft.closes)
}

// A fasthttp path that reads the body gets the same bytes through a pipe.
func TestStreamBodyRead(t *testing.T) {
	b, ft := newFakeBody("data: a\n\n", "", "data: b\n\n")
	got, err := io.ReadAll(b)
	require.NoError(t, err)
	assert.Equal(t, "data: a\n\ndata: b\n\n", string(got))
	require.NoError(t, b.Close())
	assert.ErrorIs(t, ft.ended, ErrStopped)
}

// Close while the turn still writes through Read's pipe fails its next write.
func TestStreamBodyCloseDuringRead(t *testing.T) {
	b, ft := newFakeBody("data: a\n\n", "data: b\n\n")
	p := make([]byte, 4)
	n, err := b.Read(p)
	require.NoError(t, err)
	assert.Equal(t, "data", string(p[:n]))
	require.NoError(t, b.Close())
	select {
	case <-ft.done:
	case <-time.After(10 * time.Second):
		t.Fatal("the turn did not end after Close")
	}
	assert.ErrorIs(t, ft.ended, errPeerClosed, "the write after Close fails")
}
