package fastsse

import "sync"

type itemKind uint8

const (
	kindNotify itemKind = iota + 1
	kindInfo
	kindFrame
	kindReplay // a replay in progress: one page per turn (replay.go)
)

// item is one pending message.
type item struct {
	kind   itemKind
	msg    any
	frame  *Frame
	replay *replayCursor
}

// ring is a bounded FIFO of items. It is owned by one Conn at a time: under
// the Conn's lock while it collects messages, then by the stream's
// goroutine alone while the batch is handled, then back in the pool.
//
// A ring starts with room for ringStart items and doubles up to its limit
// (Options.QueueSize) only when a connection falls behind: a publish to
// 10,000 members holds 10,000 rings until their streams take them, and at
// the full size that was 40 MB of short-lived memory per event.
type ring struct {
	buf   []item
	head  int
	n     int
	limit int
}

const ringStart = 4

// full reports whether the ring holds its limit. A requeued batch (a replay
// that goes on, with what was queued behind it) may take it past the limit.
func (r *ring) full() bool { return r.n >= r.limit }

func (r *ring) push(it item) {
	if r.n == len(r.buf) {
		r.grow()
	}
	r.buf[(r.head+r.n)%len(r.buf)] = it
	r.n++
}

// pushFront puts it before the oldest item.
func (r *ring) pushFront(it item) {
	if r.n == len(r.buf) {
		r.grow()
	}
	r.head = (r.head - 1 + len(r.buf)) % len(r.buf)
	r.buf[r.head] = it
	r.n++
}

// grow doubles the ring's room, up to its limit (past it only for a
// requeued batch), keeping the order.
func (r *ring) grow() {
	size := min(2*len(r.buf), r.limit)
	if size <= r.n {
		size = 2 * len(r.buf)
	}
	buf := make([]item, size)
	for i := 0; i < r.n; i++ {
		buf[i] = r.buf[(r.head+i)%len(r.buf)]
	}
	r.buf, r.head = buf, 0
}

// pop removes and returns the oldest item; the ring must not be empty.
func (r *ring) pop() item {
	it := r.buf[r.head]
	r.buf[r.head] = item{}
	r.head = (r.head + 1) % len(r.buf)
	r.n--
	return it
}

// ringPool hands out empty rings of the starting size.
type ringPool struct {
	limit int // Options.QueueSize
	p     sync.Pool
}

func (rp *ringPool) get() *ring {
	if r, ok := rp.p.Get().(*ring); ok {
		return r
	}
	return &ring{buf: make([]item, min(ringStart, rp.limit)), limit: rp.limit}
}

// put clears r and returns it to the pool. A ring that grew goes back
// grown: dropping it made a lagging fan-out allocate them over and over.
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
