package fastsse

import (
	"context"
	"sync"
	"time"
)

// history shares a bus group's history reads among its resuming
// connections: the positions are read in blocks of histBlockLen, each block
// once for all the connections that need it at the time (a reconnect
// storm after an instance dies), framed once, and kept while the cache has
// room. Reads run on a goroutine of their own, never under the group's
// lock nor on a transport's goroutine: a connection whose page is not in
// yet is parked and woken when it is.
type history struct {
	bus   Bus
	epoch string
	ctx   context.Context // cancelled by Group.Close
	stop  context.CancelFunc

	mu     sync.Mutex
	blocks map[uint64]*histBlock
	order  []uint64 // block numbers, oldest first, for eviction
	bytes  int
	wg     sync.WaitGroup
}

const (
	histBlockLen    = 64       // positions per block
	histBlockBytes  = 1 << 20  // a block's read stops past this many bytes (at least one frame)
	histCacheBytes  = 16 << 20 // bound on the blocks kept
	histReadTimeout = 10 * time.Second
)

// histBlock is one block of positions, read or being read.
type histBlock struct {
	done    chan struct{} // closed once read
	waiters []*Conn       // to wake once read; under history.mu
	// Set before done is closed.
	seqs   []uint64
	frames []*Frame
	from   uint64 // the read covered what came after from...
	upto   uint64 // ...up to upto
	held   bool
	err    error
	bytes  int
}

func (b *histBlock) ready() bool {
	select {
	case <-b.done:
		return true
	default:
		return false
	}
}

func newHistory(b Bus) *history {
	ctx, stop := context.WithCancel(context.Background())
	return &history{bus: b, epoch: b.Epoch(), ctx: ctx, stop: stop, blocks: make(map[uint64]*histBlock)}
}

// close cancels the reads in flight and waits for them. No read starts
// after it: get and prefetch check h.ctx under h.mu.
func (h *history) close() {
	h.mu.Lock()
	h.stop()
	h.mu.Unlock()
	h.wg.Wait()
}

// get returns the block that holds position pos+1, read or being read; c
// is woken when a block being read is in.
func (h *history) get(pos uint64, c *Conn) *histBlock {
	n := pos / histBlockLen
	from := n * histBlockLen
	h.mu.Lock()
	defer h.mu.Unlock()
	if b := h.blocks[n]; b != nil {
		if !b.ready() {
			b.waiters = append(b.waiters, c)
			return b
		}
		if b.err == nil && b.held && b.from <= pos && b.upto > pos {
			return b
		}
		if b.err == nil && b.held && b.upto <= pos {
			from = pos // cut short by its byte bound, or read before pos existed: the rest
		}
		h.dropLocked(n) // stale or failed: read again
	}
	if err := h.ctx.Err(); err != nil { // the group is closed
		b := &histBlock{done: make(chan struct{}), err: err}
		close(b.done)
		return b
	}
	b := &histBlock{done: make(chan struct{}), waiters: []*Conn{c}}
	h.blocks[n] = b
	h.order = append(h.order, n)
	h.wg.Add(1)
	go h.read(n, from, pos, b)
	return b
}

// prefetch starts reading block n unless it is read or being read: a
// replay reads the next block while it writes this one.
func (h *history) prefetch(n uint64) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.blocks[n] != nil || h.ctx.Err() != nil {
		return
	}
	b := &histBlock{done: make(chan struct{})}
	h.blocks[n] = b
	h.order = append(h.order, n)
	h.wg.Add(1)
	go h.read(n, n*histBlockLen, n*histBlockLen, b)
}

// read reads block n from position from, or from pos when from is no
// longer held (retention cut the block), up to the block's end or
// histBlockBytes.
func (h *history) read(n, from, pos uint64, b *histBlock) {
	defer h.wg.Done()
	ctx, cancel := context.WithTimeout(h.ctx, histReadTimeout)
	defer cancel()
	to := (n + 1) * histBlockLen
	read := func(after uint64) (bool, error) {
		b.seqs, b.frames, b.bytes, b.from, b.upto = b.seqs[:0], b.frames[:0], 0, after, after
		return h.bus.Read(ctx, after, to, func(seq uint64, payload []byte) bool {
			if b.bytes >= histBlockBytes {
				return false
			}
			f := busFrame(h.epoch, seq, payload)
			b.seqs = append(b.seqs, seq)
			b.frames = append(b.frames, f)
			b.bytes += f.Len()
			b.upto = seq
			return true
		})
	}
	held, err := read(from)
	if err == nil && !held && pos > from {
		held, err = read(pos)
	}
	b.held, b.err = held, err
	h.mu.Lock()
	close(b.done)
	waiters := b.waiters
	b.waiters = nil
	if h.blocks[n] == b {
		h.bytes += b.bytes
	}
	for i := 0; h.bytes > histCacheBytes && i < len(h.order); {
		if m := h.order[i]; m != n && h.blocks[m].ready() {
			h.dropLocked(m)
			continue
		}
		i++
	}
	h.mu.Unlock()
	for _, c := range waiters {
		c.wake()
	}
}

// dropLocked forgets block n; h.mu must be held. Cursors that hold it keep
// it until they are done with it.
func (h *history) dropLocked(n uint64) {
	b := h.blocks[n]
	if b == nil {
		return
	}
	delete(h.blocks, n)
	for i, m := range h.order {
		if m == n {
			h.order = append(h.order[:i], h.order[i+1:]...)
			break
		}
	}
	if b.ready() {
		h.bytes -= b.bytes
	}
}

// histPage appends the next page of a replay from history: it reports
// parked when the block it needs is not in yet (the connection is woken
// when it is), and gap when history no longer holds rc.pos.
func (rc *replayCursor) histPage(dst []byte) (out []byte, events int, more, parked, gap bool) {
	b := rc.blk
	if b != nil && b.ready() && (b.err != nil || !b.held) {
		// The read this cursor asked for: history no longer holds rc.pos
		// (or could not be read).
		return dst, 0, false, false, true
	}
	if b == nil || (b.ready() && (b.upto <= rc.pos || b.from > rc.pos)) {
		b = rc.hist.get(rc.pos, rc.conn)
		rc.blk = b
	}
	if !b.ready() {
		return dst, 0, true, true, false
	}
	if b.err != nil || !b.held {
		return dst, 0, false, false, true
	}
	if next := rc.pos/histBlockLen + 1; next*histBlockLen < rc.seam {
		rc.hist.prefetch(next)
	}
	size, last := 0, rc.pos
	for i, seq := range b.seqs {
		if seq <= rc.pos {
			continue
		}
		f := b.frames[i]
		if seq > rc.seam || (events > 0 && (size+f.Len() > replayPageBytes || events == replayPageFrames)) {
			break
		}
		dst = append(dst, f.b...)
		size += f.Len()
		events++
		last = seq
	}
	if events == 0 {
		last = max(rc.pos, b.upto) // nothing of the group's in the rest of the block
	}
	rc.pos = last
	if rc.pos >= b.upto {
		rc.blk = nil
	}
	return dst, events, rc.pos < rc.seam, false, false
}

// parked reports whether the cursor waits for a history read.
func (rc *replayCursor) parked() bool {
	return rc.blk != nil && !rc.blk.ready()
}
