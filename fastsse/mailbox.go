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
	kind itemKind
	// mode is how a frame's publisher asked it to be conflated
	// (ConflateDefault: as the endpoint says).
	mode Conflation
	// conflates: a keyed frame that its queue may conflate, as its mode
	// and the stream's limits said when it was pushed. Only these are found
	// by key.
	conflates bool
	msg       any
	frame     *Frame
	replay    *replayCursor
}

// key returns the item's conflation key: a conflatable keyed frame's,
// else "".
func (it *item) key() string {
	if !it.conflates {
		return ""
	}
	return it.frame.key
}

// ring is a bounded FIFO of items. It is owned by one Conn at a time: under
// the Conn's lock while it collects messages, then by the stream's
// goroutine alone while the batch is handled, then back in the pool.
//
// A ring starts with room for ringStart items and doubles up to its limit
// (Options.QueueSize) only when a connection falls behind: a publish to
// 10,000 members holds 10,000 rings until their streams take them, and at
// the full size that was 40 MB of short-lived memory per event.
//
// A ring also finds its pending frames by conflation key. While it holds
// a few items it looks through them; once it has held more than
// scanItems with keys to find, keys maps a key to the position of the
// newest frame pushed with it. A position counts items from the ring's
// start (base is the position of the oldest, at head), so it outlives pops
// and growing; an entry whose position was popped, or that now holds
// something else, is stale and reads as absent.
type ring struct {
	buf      []item
	head     int
	n        int
	limit    int
	base     int
	indexing bool // keys is kept
	keys     map[string]int
}

// scanItems is how many items find looks through before a ring keeps an
// index: a fan-out whose members keep up finds one or two pending, and a
// look costs less than hashing the key (BenchmarkGroupEnqueue).
const scanItems = 64

const ringStart = 4

// full reports whether the ring holds its limit. A requeued batch (a replay
// that goes on, with what was queued behind it) may take it past the limit.
func (r *ring) full() bool { return r.n >= r.limit }

// push appends it.
func (r *ring) push(it item) {
	if r.n == len(r.buf) {
		r.grow()
	}
	r.buf[(r.head+r.n)%len(r.buf)] = it
	r.n++
	if it.conflates {
		r.index(it.frame.key, r.base+r.n-1)
	}
}

// pushFront puts it before the oldest item.
func (r *ring) pushFront(it item) {
	if r.n == len(r.buf) {
		r.grow()
	}
	r.head = (r.head - 1 + len(r.buf)) % len(r.buf)
	r.buf[r.head] = it
	r.base--
	r.n++
	if it.conflates {
		r.index(it.frame.key, r.base)
	}
}

func (r *ring) index(key string, pos int) {
	switch {
	case r.indexing:
		if len(r.keys) >= 2*r.limit+16 {
			r.reindex() // stale entries of keys long popped; keys need not repeat
		}
		r.keys[key] = pos
	case r.n > scanItems:
		r.indexing = true
		r.reindex()
	}
}

// conflateAll leaves one pending frame per key, each where its key was
// first pending and holding its newest value, and returns how many it
// conflated away.
func (r *ring) conflateAll() int {
	if r.keys == nil {
		r.keys = make(map[string]int)
	}
	clear(r.keys)
	r.indexing = true
	w := 0
	for i := 0; i < r.n; i++ {
		it := r.buf[(r.head+i)%len(r.buf)]
		if k := it.key(); k != "" {
			if pos, ok := r.keys[k]; ok {
				r.buf[(r.head+pos-r.base)%len(r.buf)] = it
				continue
			}
			r.keys[k] = r.base + w
		}
		r.buf[(r.head+w)%len(r.buf)] = it
		w++
	}
	gone := r.n - w
	for i := w; i < r.n; i++ {
		r.buf[(r.head+i)%len(r.buf)] = item{}
	}
	r.n = w
	return gone
}

// reindex rebuilds keys from the keyed frames pending.
func (r *ring) reindex() {
	if r.keys == nil {
		r.keys = make(map[string]int)
	}
	clear(r.keys)
	for i := 0; i < r.n; i++ {
		if k := r.buf[(r.head+i)%len(r.buf)].key(); k != "" {
			r.keys[k] = r.base + i
		}
	}
}

// find returns the slot in buf of the pending frame keyed key, if the ring
// holds one.
func (r *ring) find(key string) (int, bool) {
	if !r.indexing {
		for i := r.n - 1; i >= 0; i-- {
			slot := (r.head + i) % len(r.buf)
			if r.buf[slot].key() == key {
				return slot, true
			}
		}
		return 0, false
	}
	pos, ok := r.keys[key]
	if !ok || pos < r.base || pos >= r.base+r.n {
		return 0, false
	}
	slot := (r.head + pos - r.base) % len(r.buf)
	if r.buf[slot].key() != key {
		return 0, false
	}
	return slot, true
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
	r.base++
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
	r.head, r.base, r.indexing = 0, 0, false
	if len(r.keys) > r.limit {
		r.keys = nil // do not pool a big index
	} else {
		clear(r.keys) // keeps its room: a conflating stream refills it
	}
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
