package fastsse

// Frame is a pre-encoded event: immutable bytes that any number of
// connections can share, for encode-once publishing. A Frame is safe for
// concurrent use; the zero Frame is empty.
type Frame struct {
	b []byte
}

// NewFrame encodes ev once into a new Frame. It returns the encoder's errors.
func NewFrame(ev *Event) (*Frame, error) {
	if err := ev.validate(); err != nil {
		return nil, err
	}
	return &Frame{b: ev.appendTo(nil)}, nil
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

// Len returns the length of the frame's wire bytes.
func (f *Frame) Len() int { return len(f.Bytes()) }
