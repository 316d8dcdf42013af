package fastsse

import (
	"crypto/rand"
	"encoding/base32"
	"errors"
	"sort"
	"strconv"
	"strings"
	"sync"
)

// ErrReplayGap is returned by Group.Resume when the store no longer holds
// (or never held) everything after the client's last event id: the id is
// unknown, from another epoch, group or instance, or older than what the
// store keeps. The client may have missed events; none were replayed, and
// Resume queued a GapEvent to tell it.
var ErrReplayGap = errors.New("fastsse: last event id not in replay store")

// GapEvent is the type of the event Group.Resume queues, before any live
// event, when it answers ErrReplayGap (or when a replay finds the store has
// dropped events it had not sent yet). Its data is the Last-Event-ID the
// client sent (for a replay cut short: the id of the last event it got),
// and its id is the group's position when the client joined, so that the
// client's next resume starts after the hole. A group without a store has
// no position: its gap event has no id field. A client that gets one has
// missed events and should resynchronise (reload what it shows).
const GapEvent = "lasse-gap"

// ReplayStore keeps a group's published events for Group.Resume, by
// position: the Group numbers its events 1, 2, 3, ... within the store's
// epoch, and an event's id is the epoch and its position (see Group).
//
// A Group calls Position once, in NewGroup, and Add under its own lock, one
// call at a time, in increasing position. Read runs concurrently with Add
// and with other Reads, without the Group's lock (each resuming connection
// reads its replay page by page as its client takes it), so an
// implementation must be safe for concurrent use. It must not call back
// into the Group, and must not modify or retain more than the Frames it is
// given. Frames are immutable and may be shared.
type ReplayStore interface {
	// Position returns the store's epoch and the position of the newest
	// event it holds (0: none). The epoch names the store's sequence: it
	// must differ from every other store's and, unless the store keeps its
	// events across restarts, from its own after a restart. It must not
	// contain CR, LF or NUL.
	Position() (epoch string, last uint64)
	// Add records f, the event at position seq, encoded with its id field.
	// No event of the group has a position between the previous Add's and
	// seq.
	Add(seq uint64, f *Frame)
	// Read calls fn with the events after position after, oldest first,
	// until fn returns false or none is left. It reports whether the store
	// holds every event after position after: false (fn not called) when
	// some were dropped or after is newer than the newest.
	Read(after uint64, fn func(seq uint64, f *Frame) bool) bool
}

// ReplayRing is the in-memory ReplayStore: it keeps the latest events, at
// most a number of them and at most a number of bytes of them. Its epoch is
// random, so ids from another ring, process or restart are never found in
// it. It is safe for concurrent use.
type ReplayRing struct {
	mu       sync.Mutex
	epoch    string
	ents     []replayEntry // circular; the oldest at head
	head, n  int
	bytes    int    // wire bytes of the kept frames
	maxBytes int    // bound on bytes
	floor    uint64 // the ring holds every event after floor up to last
	last     uint64
}

type replayEntry struct {
	seq uint64
	f   *Frame
}

// DefaultReplayBytes bounds a ReplayRing's bytes when GroupOptions leaves
// ReplayBytes at 0.
const DefaultReplayBytes = 8 << 20

// NewReplayRing returns a ring that keeps the latest events, at most n
// (at least 1) and at most maxBytes bytes of frames (DefaultReplayBytes
// when maxBytes <= 0). An event larger than maxBytes is not kept at all: a
// client that missed it is told of a gap.
func NewReplayRing(n, maxBytes int) *ReplayRing {
	if maxBytes <= 0 {
		maxBytes = DefaultReplayBytes
	}
	return &ReplayRing{epoch: newEpoch(), ents: make([]replayEntry, max(n, 1)), maxBytes: maxBytes}
}

// Position implements ReplayStore.
func (r *ReplayRing) Position() (string, uint64) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.epoch, r.last
}

// Add implements ReplayStore. A seq not above the last one's is ignored.
func (r *ReplayRing) Add(seq uint64, f *Frame) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if seq <= r.last {
		return
	}
	size := f.Len()
	for r.n > 0 && (r.n == len(r.ents) || r.bytes+size > r.maxBytes) {
		r.evict()
	}
	r.last = seq
	if size > r.maxBytes {
		r.floor = seq // nothing kept: the ring holds nothing before seq
		return
	}
	r.ents[(r.head+r.n)%len(r.ents)] = replayEntry{seq: seq, f: f}
	r.n++
	r.bytes += size
}

// restart empties the ring, which then holds everything after seq.
func (r *ReplayRing) restart(seq uint64) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for r.n > 0 {
		r.evict()
	}
	r.floor, r.last = seq, seq
}

func (r *ReplayRing) evict() {
	old := &r.ents[r.head]
	r.floor = old.seq
	r.bytes -= old.f.Len()
	*old = replayEntry{}
	r.head = (r.head + 1) % len(r.ents)
	r.n--
}

// Read implements ReplayStore.
func (r *ReplayRing) Read(after uint64, fn func(seq uint64, f *Frame) bool) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	if after < r.floor || after > r.last {
		return false
	}
	// The first entry after after; positions increase along the ring.
	i := sort.Search(r.n, func(i int) bool { return r.ents[(r.head+i)%len(r.ents)].seq > after })
	for ; i < r.n; i++ {
		e := &r.ents[(r.head+i)%len(r.ents)]
		if !fn(e.seq, e.f) {
			break
		}
	}
	return true
}

// epochEncoding writes 5 random bytes as 8 characters of [0-9a-v].
var epochEncoding = base32.NewEncoding("0123456789abcdefghijklmnopqrstuv").WithPadding(base32.NoPadding)

// newEpoch returns 8 random characters: 40 bits, so that two processes,
// restarts or groups share an epoch with a chance of one in 10^12.
func newEpoch() string {
	var b [5]byte
	_, _ = rand.Read(b[:]) // crypto/rand.Read never fails
	return epochEncoding.EncodeToString(b[:])
}

// formatID returns the id of the event at position seq of epoch.
func formatID(epoch string, seq uint64) string {
	return epoch + "-" + strconv.FormatUint(seq, 10)
}

// parseID splits an id made by formatID; ok is false for anything else.
func parseID(id string) (epoch string, seq uint64, ok bool) {
	i := strings.LastIndexByte(id, '-')
	if i < 0 {
		return "", 0, false
	}
	digits := id[i+1:]
	if digits == "" || (len(digits) > 1 && digits[0] == '0') || digits[0] == '+' {
		return "", 0, false
	}
	seq, err := strconv.ParseUint(digits, 10, 64)
	if err != nil {
		return "", 0, false
	}
	return id[:i], seq, true
}

// replayPageBytes and replayPageFrames bound one page of a replay: what a
// resuming connection adds to one batch. A page holds at least one frame,
// so a frame larger than a page is a page of its own.
const (
	replayPageBytes  = 64 << 10
	replayPageFrames = 512
)

// replayCursor is a replay in progress for one connection: the events after
// pos up to seam (the group's position when the connection joined; live
// events after it are queued behind the cursor). It is queued as one item
// and written a page per turn, so that a client that does not read holds
// one page, not the whole replay. Only the connection's turn touches it.
type replayCursor struct {
	store  ReplayStore
	epoch  string
	pos    uint64 // the last position sent
	seam   uint64
	frames []*Frame // scratch for one page
	// A bus group's cursor reads from the bus's history what its ring no
	// longer holds (history.go).
	hist *history
	blk  *histBlock
	conn *Conn
}

// page appends the next page of the replay to dst and reports how many
// events it appended and whether any remain. When the store has dropped
// events the client has not had, it appends a GapEvent instead and ends
// the replay.
func (rc *replayCursor) page(dst []byte) (out []byte, events int, more bool) {
	if rc.hist != nil && !rc.store.Read(rc.pos, func(uint64, *Frame) bool { return false }) {
		out, events, more, _, gap := rc.histPage(dst)
		if gap {
			return rc.gap(dst), 1, false
		}
		return out, events, more
	}
	frames, size, last := rc.frames[:0], 0, rc.pos
	held := rc.store.Read(rc.pos, func(seq uint64, f *Frame) bool {
		if seq > rc.seam || (len(frames) > 0 && (size+f.Len() > replayPageBytes || len(frames) == replayPageFrames)) {
			return false
		}
		frames = append(frames, f)
		size += f.Len()
		last = seq
		return true
	})
	if !held {
		return rc.gap(dst), 1, false
	}
	for _, f := range frames {
		dst = append(dst, f.b...)
	}
	clear(frames)
	rc.frames = frames[:0]
	rc.pos = last
	return dst, len(frames), len(frames) > 0 && rc.pos < rc.seam
}

// gap appends the GapEvent that ends a replay whose store dropped what the
// client had not had yet.
func (rc *replayCursor) gap(dst []byte) []byte {
	ev := Event{ID: formatID(rc.epoch, rc.seam), Event: GapEvent, Data: formatID(rc.epoch, rc.pos)}
	return ev.appendTo(dst)
}

// replayTurn writes one page of the replay it carries into the batch. When
// more remain it puts it back at the front of q, the connection's taken
// queue, and reports true: the batch ends there, and the rest of q (live
// events queued behind the replay) waits for the next turn, after the
// batch is written.
func replayTurn(q *ring, it item, dst []byte) (out []byte, events int, again bool) {
	out, events, again = it.replay.page(dst)
	if again {
		q.pushFront(it)
	}
	return out, events, again
}

// gapFrame is the GapEvent for a client that sent lastEventID, the group
// being at position id ("" for a group without positions).
func gapFrame(id, lastEventID string) *Frame {
	ev := Event{ID: id, Event: GapEvent, Data: lastEventID}
	if strings.ContainsAny(id, "\r\n\x00") {
		ev.ID = ""
	}
	if lastEventID == "" {
		ev.DataBytes = []byte{}
	}
	return ev.frame()
}
