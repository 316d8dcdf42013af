//go:build !race

package loadtest

import (
	"testing"

	"github.com/stretchr/testify/assert"
)

// The parser and chunked decoder allocate nothing per event once warm.
func TestParserAllocs(t *testing.T) {
	var p Parser
	var c countEvents
	stream := []byte("id: 1\ndata: 1736000000123456789 xxxxxxxxxx\n\n: hb\n\n")
	p.Feed(stream, &c) // grow the buffers once
	allocs := testing.AllocsPerRun(100, func() { p.Feed(stream, &c) })
	assert.Zero(t, allocs)
	assert.Equal(t, 101+1, int(c))

	var b bodyDecoder
	b.Reset(framingChunked, 0)
	chunk := []byte("2d\r\nid: 1\ndata: 1736000000123456789 xxxxxxxxxxx\n\n\r\n")
	_ = b.Feed(chunk, &c)
	allocs = testing.AllocsPerRun(100, func() { _ = b.Feed(chunk, &c) })
	assert.Zero(t, allocs)
}

type countEvents int

func (c *countEvents) OnEvent(*Event) { *c++ }
