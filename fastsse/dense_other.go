//go:build !linux

package fastsse

import (
	"errors"
	"sync/atomic"

	"github.com/valyala/fasthttp"
)

// Elsewhere than Linux, TransportDense falls back to TransportStream
// (Options.withDefaults), so none of this runs.
const denseSupported = false

type denseConn struct{ since atomic.Int64 }

func (d *denseConn) schedule(*Conn) {}

type denseSet struct{}

func (c *core) denseAcquire() (*denseSet, error) {
	return nil, errors.New("fastsse: dense transport needs Linux")
}

func (c *core) denseRelease(*denseSet) {}

func (s *denseSet) newConn(uint64, func()) *denseConn { return nil }

func serveDense[S any](*stream[S], *fasthttp.RequestCtx) {}

func (st *stream[S]) denseStep() {}
