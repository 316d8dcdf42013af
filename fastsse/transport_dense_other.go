//go:build !linux

package fastsse

import "errors"

// Elsewhere than Linux, New refuses TransportDense (checkTransport), so
// none of this runs.
const denseSupported = false

type denseState struct{}

func (denseState) opening(*core, *Conn) (opening, error) {
	return nil, errors.New("fastsse: the dense transport needs Linux")
}
