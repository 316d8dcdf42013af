package fastsse

import (
	"errors"
	"sync"
)

// ErrReplayGap is returned by Group.Resume when the client's last event id
// is not in the replay store: it is unknown, or older than what the store
// keeps. The client may have missed events; none were replayed.
var ErrReplayGap = errors.New("fastsse: last event id not in replay store")

// ReplayStore keeps published events for Group.Resume. A Group calls it
// under its own lock, one call at a time, so an implementation sees Add and
// Since strictly ordered; it must not call back into the Group. It must not
// modify or retain more than the Frames it is given. Frames are immutable
// and may be shared.
type ReplayStore interface {
	// Add records the event with id, encoded as f (which includes the id
	// field when id is not empty).
	Add(id string, f *Frame)
	// Since calls fn with every frame recorded after the one with id, oldest
	// first, and reports whether id was found. It calls fn not at all when
	// id was not found.
	Since(id string, fn func(*Frame)) bool
}

// ReplayRing is the in-memory ReplayStore: it keeps the last N events. It is
// safe for concurrent use.
type ReplayRing struct {
	mu    sync.Mutex
	ents  []replayEntry
	head  int // index of the oldest entry
	n     int
	index map[string]uint64 // id -> seq of its newest entry
	seq   uint64            // seq of the newest entry
}

type replayEntry struct {
	id  string
	seq uint64
	f   *Frame
}

// NewReplayRing returns a ring that keeps the last n events (at least 1).
func NewReplayRing(n int) *ReplayRing {
	return &ReplayRing{ents: make([]replayEntry, max(n, 1)), index: make(map[string]uint64)}
}

// Add implements ReplayStore. An event without an id is kept (it is
// replayed after an earlier id) but cannot itself be resumed from.
func (r *ReplayRing) Add(id string, f *Frame) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.n == len(r.ents) {
		old := &r.ents[r.head]
		if s, ok := r.index[old.id]; ok && s == old.seq {
			delete(r.index, old.id)
		}
		*old = replayEntry{}
		r.head = (r.head + 1) % len(r.ents)
		r.n--
	}
	r.seq++
	r.ents[(r.head+r.n)%len(r.ents)] = replayEntry{id: id, seq: r.seq, f: f}
	r.n++
	if id != "" {
		r.index[id] = r.seq
	}
}

// Since implements ReplayStore.
func (r *ReplayRing) Since(id string, fn func(*Frame)) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	s, ok := r.index[id]
	if !ok {
		return false
	}
	oldest := r.seq - uint64(r.n) + 1
	for i := int(s - oldest + 1); i < r.n; i++ {
		fn(r.ents[(r.head+i)%len(r.ents)].f)
	}
	return true
}
