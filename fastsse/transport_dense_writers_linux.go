//go:build linux

package fastsse

import (
	"runtime"
	"sync"
	"sync/atomic"
	"time"
)

// The dense transport's writers: a few goroutines, one per shard, that run
// the turns of the streams with work. A turn whose callback blocks must not
// hold up its shard's other streams: a shard watches its turns (check), and
// one that has run for denseStuck hands the rest of the shard to a new
// writer goroutine; the old one finishes that turn and exits.

// denseStuck is how long a turn may run before its shard's other streams
// are handed to a new writer goroutine.
const denseStuck = 2 * time.Millisecond

// denseYieldEvery is how many turns a writer runs before it lets other
// goroutines have its P: 32 small writes to loopback take about 0.3 ms.
const denseYieldEvery = 32

// denseShard is one writer goroutine's share of the streams, and that
// goroutine's state.
type denseShard struct {
	set   *denseSet
	kick  chan struct{}
	watch *time.Timer // runs check while the writer goes through a batch
	// watching is set while watch is armed, so that a writer arms it once
	// for a run of batches, not once per batch.
	watching atomic.Bool

	mu      sync.Mutex
	ready   []*denseConn // queued turns
	spare   []*denseConn
	cur     *denseWriter // the shard's writer goroutine
	batch   []*denseConn // the turns cur is going through, for a takeover
	stopped bool
}

// denseWriter is one writer goroutine's progress, read by its shard's check.
type denseWriter struct {
	retired atomic.Bool  // a newer writer has the shard: return after this turn
	pos     atomic.Int64 // index in the batch of the turn being run
	turnAt  atomic.Int64 // core clock when that turn began; 0 between turns
}

func (sh *denseShard) push(d *denseConn) {
	sh.mu.Lock()
	sh.ready = append(sh.ready, d)
	first := len(sh.ready) == 1
	sh.mu.Unlock()
	if first {
		select {
		case sh.kick <- struct{}{}:
		default:
		}
	}
}

// work is a shard's writer goroutine w: it runs the turns of the streams
// that have work, until the set stops or a newer writer takes the shard
// over.
func (sh *denseShard) work(w *denseWriter) {
	s := sh.set
	defer s.wg.Done()
	for {
		select {
		case <-sh.kick:
		case <-s.stop:
			return
		}
		for {
			// Two slices take turns: push appends to ready while this
			// goroutine goes through the other.
			sh.mu.Lock()
			if w.retired.Load() {
				sh.mu.Unlock()
				return
			}
			batch := sh.ready
			sh.ready, sh.spare = sh.spare[:0], nil
			if len(batch) > 0 {
				sh.batch = batch
			}
			sh.mu.Unlock()
			if len(batch) > 0 && !sh.watching.Swap(true) {
				sh.watch.Reset(denseStuck)
			}
			for i, d := range batch {
				w.pos.Store(int64(i))
				w.turnAt.Store(max(s.core.now(), 1))
				d.run()
				w.turnAt.Store(0)
				if w.retired.Load() {
					return // the rest of the batch went to the new writer
				}
				if i%denseYieldEvery == denseYieldEvery-1 {
					// Writes are raw system calls (rawWritev), which
					// never let the scheduler in: without this the
					// writers hold every P through a broadcast, and the
					// publisher, timers and the poll goroutine wait.
					runtime.Gosched()
				}
			}
			sh.mu.Lock()
			if w.retired.Load() {
				sh.mu.Unlock()
				return
			}
			clear(batch)
			sh.batch = nil
			sh.spare = batch[:0]
			sh.mu.Unlock()
			if len(batch) == 0 {
				break
			}
		}
	}
}

// check runs on a timer while the shard's writer goes through a batch.
// When the turn in progress has run for denseStuck (a callback that
// blocks, say), a new writer goroutine takes over the rest of the batch
// and the shard; the old one finishes its turn and returns. A stream
// whose turn the old writer runs still is on the new writer's list too
// (when woken again): run skips it while its turn is not over.
func (sh *denseShard) check() {
	sh.mu.Lock()
	defer sh.mu.Unlock()
	if sh.stopped || sh.batch == nil {
		sh.watching.Store(false)
		return
	}
	w := sh.cur
	at := w.turnAt.Load()
	if at == 0 || time.Duration(sh.set.core.now()-at) < denseStuck {
		sh.watch.Reset(denseStuck)
		return
	}
	w.retired.Store(true)
	rest := sh.batch[w.pos.Load()+1:]
	sh.ready = append(append(make([]*denseConn, 0, len(rest)+len(sh.ready)), rest...), sh.ready...)
	sh.batch = nil
	sh.watching.Store(false) // the new writer arms it for its first batch
	sh.cur = &denseWriter{}
	sh.set.wg.Add(1)
	go sh.work(sh.cur)
	select {
	case sh.kick <- struct{}{}:
	default:
	}
}

// run is one turn of the stream on its shard's writer, if it is queued
// (a stream can be on the ready list twice after a takeover).
func (d *denseConn) run() {
	if !d.state.CompareAndSwap(turnQueued, turnRunning) {
		return
	}
	d.turn()
	if !d.state.CompareAndSwap(turnRunning, turnIdle) {
		// Woken during the turn (turnRerun).
		d.state.Store(turnQueued)
		d.shard.push(d)
	}
}
