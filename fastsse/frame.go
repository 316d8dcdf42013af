package fastsse

import (
	"bytes"
	"strings"
)

// Frame is a pre-encoded event: immutable bytes that any number of
// connections can share, for encode-once publishing. A Frame is safe for
// concurrent use; the zero Frame is empty.
type Frame struct {
	b   []byte
	key string // the event's Key: how queues conflate it
}

// NewFrame encodes ev once into a new Frame. It returns the encoder's errors.
func NewFrame(ev *Event) (*Frame, error) {
	if err := ev.validate(); err != nil {
		return nil, err
	}
	return ev.frame(), nil
}

// frame encodes a validated event into a Frame of the right size: one
// allocation for the bytes instead of a buffer grown several times. Line
// breaks are counted to size the per-line prefixes; a CR counted as well as
// its LF only over-sizes.
func (ev *Event) frame() *Frame {
	return &Frame{b: ev.appendTo(make([]byte, 0, ev.frameSize())), key: ev.Key}
}

// frameSize bounds the length of a validated event's wire form from above.
func (ev *Event) frameSize() int {
	data := ev.DataBytes
	if data == nil {
		data = bytesOf(ev.Data)
	}
	lines := 1 + bytes.Count(data, []byte{'\n'}) + bytes.Count(data, []byte{'\r'})
	n := len(ev.ID) + len(ev.Event) + len(data) + lines*len("data: \n") + len("id: \nevent: \nretry: 18446744073709551615\n\n")
	if ev.Comment != "" {
		clines := 1 + strings.Count(ev.Comment, "\n") + strings.Count(ev.Comment, "\r")
		n += len(ev.Comment) + clines*len(": \n")
	}
	return n
}

// frameArena carves the frames of one publisher (a Group's Publish, under
// its lock) out of blocks: a block of Frames and a slab of bytes, each
// allocated once for many events, so that publishing allocates nothing per
// event in the steady state. The garbage collector frees a block once no
// frame in it is referenced (by a queue or a replay store): what a block
// keeps alive past its frames is bounded by the block, and the frames
// still referenced are the recent ones. An event too large for a slab of
// its own gets its own allocation, as NewFrame's.
type frameArena struct {
	frames []Frame
	slab   []byte
}

const (
	arenaFrames = 64
	arenaSlab   = 16 << 10
)

// frame encodes a validated event into the arena.
func (a *frameArena) frame(ev *Event) *Frame {
	n := ev.frameSize()
	if n > arenaSlab/4 {
		return ev.frame()
	}
	if cap(a.slab)-len(a.slab) < n {
		a.slab = make([]byte, 0, arenaSlab)
	}
	start := len(a.slab)
	a.slab = ev.appendTo(a.slab) // within cap: n bounds it
	b := a.slab[start:len(a.slab):len(a.slab)]
	if len(a.frames) == cap(a.frames) {
		a.frames = make([]Frame, 0, arenaFrames)
	}
	a.frames = append(a.frames, Frame{b: b, key: ev.Key})
	return &a.frames[len(a.frames)-1]
}

// CommentFrame returns a Frame holding AppendComment(nil, text).
func CommentFrame(text string) *Frame {
	return &Frame{b: AppendComment(nil, text)}
}

// Bytes returns the frame's wire bytes. They are shared: do not modify them.
func (f *Frame) Bytes() []byte {
	if f == nil {
		return nil
	}
	return f.b
}

// Key returns the conflation key of the event the frame was made from (see
// Event.Key), or "".
func (f *Frame) Key() string {
	if f == nil {
		return ""
	}
	return f.key
}

// Len returns the length of the frame's wire bytes.
func (f *Frame) Len() int { return len(f.Bytes()) }
