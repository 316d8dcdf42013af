package fastsse

import "sync"

type itemKind uint8

const (
	kindNotify itemKind = iota + 1
	kindInfo
	kindFrame
)

// item is one pending message.
type item struct {
	kind  itemKind
	msg   any
	frame *Frame
}

// ring is a fixed-capacity FIFO of items. It is owned by one Conn at a time:
// under the Conn's lock while it collects messages, then by the stream's
// goroutine alone while the batch is handled, then back in the pool.
type ring struct {
	buf  []item
	head int
	n    int
}

func (r *ring) full() bool { return r.n == len(r.buf) }

func (r *ring) push(it item) {
	r.buf[(r.head+r.n)%len(r.buf)] = it
	r.n++
}

// pop removes and returns the oldest item; the ring must not be empty.
func (r *ring) pop() item {
	it := r.buf[r.head]
	r.buf[r.head] = item{}
	r.head = (r.head + 1) % len(r.buf)
	r.n--
	return it
}

// ringPool hands out rings of one capacity. Rings come back empty.
type ringPool struct {
	size int
	p    sync.Pool
}

func (rp *ringPool) get() *ring {
	if r, ok := rp.p.Get().(*ring); ok {
		return r
	}
	return &ring{buf: make([]item, rp.size)}
}

// put clears r and returns it to the pool.
func (rp *ringPool) put(r *ring) {
	for r.n > 0 {
		r.pop()
	}
	r.head = 0
	rp.p.Put(r)
}

// bufPool hands out batch buffers; buffers grown past maxPooledBuf are
// dropped rather than kept (one huge event must not pin memory for good).
type bufPool struct{ p sync.Pool }

const maxPooledBuf = 64 << 10

func (bp *bufPool) get() *[]byte {
	if b, ok := bp.p.Get().(*[]byte); ok {
		return b
	}
	b := make([]byte, 0, 4096)
	return &b
}

func (bp *bufPool) put(b *[]byte) {
	if cap(*b) > maxPooledBuf {
		return
	}
	*b = (*b)[:0]
	bp.p.Put(b)
}
