package fastsse

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// A ring starts small, grows to its limit keeping FIFO order across
// wrap-arounds.
func TestRingGrowsInOrder(t *testing.T) {
	rp := &ringPool{limit: 20}
	r := rp.get()
	require.Len(t, r.buf, ringStart)
	next, want := 0, 0
	// Interleave pushes and pops so that growth happens with the ring wrapped.
	for r.n < r.limit {
		r.push(item{kind: kindNotify, msg: next})
		next++
		if next%3 == 0 {
			assert.Equal(t, want, r.pop().msg)
			want++
		}
	}
	assert.True(t, r.full())
	assert.Len(t, r.buf, 20, "doubled from 4 to 8 and 16, then capped at the limit")
	for r.n > 0 {
		assert.Equal(t, want, r.pop().msg)
		want++
	}
	assert.Equal(t, next, want, "every item came out, once, in order")
}

// A limit below the starting size is the ring's whole size.
func TestRingSmallLimit(t *testing.T) {
	rp := &ringPool{limit: 2}
	r := rp.get()
	r.push(item{msg: 1})
	r.push(item{msg: 2})
	assert.True(t, r.full())
	assert.Len(t, r.buf, 2)
}
