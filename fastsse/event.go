package fastsse

import (
	"bytes"
	"strconv"
	"time"
	"unsafe"
)

// Event is one server-sent event, lasse's event map.
//
// Data is the message. DataBytes, when non-nil, is used instead of Data, so a
// []byte payload needs no conversion; a non-nil empty DataBytes (`[]byte{}`)
// sends an explicitly empty message, which a browser dispatches with data "".
// An event with neither is refused with ErrDataRequired.
//
// The encoder never retains an Event or anything it points to.
type Event struct {
	// ID sets the client's last event id. Empty: no id field. It must not
	// contain CR, LF or NUL.
	ID string
	// Event is the event type (the field is "event"). Empty: no event field,
	// and the browser dispatches a "message" event. It must not contain CR or LF.
	Event string
	// Data is the payload. Line breaks (CRLF, CR or LF) split it into one
	// "data:" line each; the client gets them back as LF.
	Data string
	// DataBytes replaces Data when non-nil.
	DataBytes []byte
	// Retry, when positive, tells the client how long to wait before
	// reconnecting; it is written in whole milliseconds, truncated but at
	// least 1 (a "retry: 0" would have browsers reconnect at once). Zero: no
	// retry field. Negative: ErrInvalidRetry.
	Retry time.Duration
	// Comment is written first, one ": " line per line of it. Empty: none.
	Comment string
	// Key is the event's conflation key when it is published (Group.Publish,
	// NewFrame): the symbol of a price, the match of a score. Queues
	// conflate frames by it as Options.Conflation, GroupOptions.Conflation
	// and Limits say. It is never written. Empty: not keyed.
	Key string
}

// AppendEvent appends the wire form of ev to dst and returns the extended
// buffer. Fields are written in lasse's order: comment lines, id, event, data
// lines, retry, then the blank line that ends the event. A nil dst is valid;
// dst is never retained.
//
// On error (ErrDataRequired, ErrInvalidID, ErrInvalidType, ErrInvalidRetry)
// dst is returned unchanged: nothing partial is ever appended. A nil ev is
// ErrDataRequired.
func AppendEvent(dst []byte, ev *Event) ([]byte, error) {
	if err := ev.validate(); err != nil {
		return dst, err
	}
	return ev.appendTo(dst), nil
}

// AppendComment appends a comment-only frame: one ": " line per line of text,
// then the blank line. Browsers ignore it; proxies see traffic. An empty text
// gives ": \n\n", the heartbeat.
func AppendComment(dst []byte, text string) []byte {
	if text == "" {
		return append(dst, ": \n\n"...)
	}
	dst = appendLines(dst, ": ", bytesOf(text))
	return append(dst, '\n')
}

func (ev *Event) validate() error {
	if ev == nil || (ev.DataBytes == nil && ev.Data == "") {
		return ErrDataRequired
	}
	if ev.Retry < 0 {
		return ErrInvalidRetry
	}
	// Copied to locals, so that the loops do not reload them through ev.
	// Valid values rarely hold a byte at or below CR: one test per byte.
	id, typ := ev.ID, ev.Event
	for i := 0; i < len(id); i++ {
		if c := id[i]; c <= '\r' && (c == '\n' || c == '\r' || c == 0) {
			return ErrInvalidID
		}
	}
	for i := 0; i < len(typ); i++ {
		if c := typ[i]; c <= '\r' && (c == '\n' || c == '\r') {
			return ErrInvalidType
		}
	}
	return nil
}

// appendTo writes a validated event.
func (ev *Event) appendTo(dst []byte) []byte {
	if ev.Comment != "" {
		dst = appendLines(dst, ": ", bytesOf(ev.Comment))
	}
	if ev.ID != "" {
		dst = append(dst, "id: "...)
		dst = append(dst, ev.ID...)
		dst = append(dst, '\n')
	}
	if ev.Event != "" {
		dst = append(dst, "event: "...)
		dst = append(dst, ev.Event...)
		dst = append(dst, '\n')
	}
	data := ev.DataBytes
	if data == nil {
		data = bytesOf(ev.Data)
	}
	dst = appendLines(dst, "data: ", data)
	if ev.Retry > 0 {
		dst = append(dst, "retry: "...)
		dst = strconv.AppendInt(dst, max(ev.Retry.Milliseconds(), 1), 10)
		dst = append(dst, '\n')
	}
	return append(dst, '\n')
}

// appendLines writes prefix+line+"\n" for every line of v, where a line ends
// at CRLF, CR or LF, and the text after the last break (possibly empty) is a
// line too, so a trailing break survives the round trip. Runs between breaks
// are copied whole. The next LF is found once with bytes.IndexByte and kept
// while the CRs before it are consumed, so every byte is scanned at most twice.
func appendLines(dst []byte, prefix string, v []byte) []byte {
	lf := bytes.IndexByte(v, '\n') // index of the next LF in v, or -1
	for {
		line := v
		if lf >= 0 {
			line = v[:lf]
		}
		if cr := bytes.IndexByte(line, '\r'); cr >= 0 {
			dst = append(dst, prefix...)
			dst = append(dst, v[:cr]...)
			dst = append(dst, '\n')
			next := cr + 1
			if next == lf { // CRLF is one break
				next++
				v = v[next:]
				lf = bytes.IndexByte(v, '\n')
				continue
			}
			v = v[next:]
			if lf >= 0 {
				lf -= next
			}
			continue
		}
		dst = append(dst, prefix...)
		dst = append(dst, line...)
		dst = append(dst, '\n')
		if lf < 0 {
			return dst
		}
		v = v[lf+1:]
		lf = bytes.IndexByte(v, '\n')
	}
}

// bytesOf views s as bytes without copying. The result must not be written.
func bytesOf(s string) []byte {
	return unsafe.Slice(unsafe.StringData(s), len(s))
}
