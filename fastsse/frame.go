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
	return &Frame{b: ev.appendTo(make([]byte, 0, n)), key: ev.Key}
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
