package sseclient

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"math"
)

// ErrEventTooLarge is the error for an event (or a single line) longer than
// Options.MaxEventSize. It ends the stream for good: a server that replays
// would send the same event again.
var ErrEventTooLarge = errors.New("sseclient: event larger than MaxEventSize")

// messageType is the type of an event that names none.
var messageType = []byte("message")

var utf8BOM = []byte{0xEF, 0xBB, 0xBF}

const (
	// readSize is the read buffer's first size and the least room a read
	// gets; it grows (doubling) for longer lines, up to about max.
	readSize = 16 << 10
	// keepSize: buffers larger than this are dropped when a connection
	// ends, so one huge event does not pin its memory for good.
	keepSize = 1 << 20
)

// parser interprets one event stream the way a browser's EventSource does
// (WHATWG HTML, "Interpreting an event stream"), pulling bytes from a reader.
// It works on bytes, as internal/ssespec does: the line and field structure
// is the same with or without UTF-8 decoding. In steady state it allocates
// nothing: the read buffer and the field buffers are reused, and the Event
// it returns aliases them.
type parser struct {
	src  io.Reader
	max  int // bound on a line and on an event's fields together
	buf  []byte
	r, w int // buf[r:w] is unread

	started bool // past the BOM check
	skipLF  bool // the last line ended at a CR: a following LF is part of that break

	data []byte // data buffer
	typ  []byte // event type buffer
	// idBuf is the last event ID buffer; lastID is the EventSource's last
	// event ID string, set from idBuf at every blank line (the standard's
	// dispatch step 1), and sent as Last-Event-ID on reconnection.
	idBuf  []byte
	lastID []byte

	retry    int64 // reconnection time in ms, valid when hasRetry
	hasRetry bool
	sawRetry bool // a valid retry field on this connection
}

// reset starts a new connection's stream on src: the buffers of a partial
// event are emptied; the last event id and the reconnection time carry over.
func (p *parser) reset(src io.Reader) {
	p.src = src
	p.r, p.w = 0, 0
	p.started, p.skipLF, p.sawRetry = false, false, false
	p.data, p.typ = trim(p.data), trim(p.typ)
	p.idBuf = append(p.idBuf[:0], p.lastID...)
	if cap(p.buf) > keepSize {
		p.buf = nil
	}
}

func trim(b []byte) []byte {
	if cap(b) > keepSize {
		return nil
	}
	return b[:0]
}

// next returns the next dispatched event, or the reader's error (io.EOF at
// the end of the stream; an event not ended by a blank line is then
// discarded, as the standard says), or ErrEventTooLarge.
func (p *parser) next() (Event, error) {
	for {
		if !p.started {
			if err := p.skipBOM(); err != nil {
				return Event{}, err
			}
		}
		b := p.buf[p.r:p.w]
		if p.skipLF && len(b) > 0 {
			p.skipLF = false
			if b[0] == '\n' {
				p.r++
				continue
			}
		}
		i := lineEnd(b)
		if i < 0 {
			if err := p.fill(); err != nil {
				return Event{}, err
			}
			continue
		}
		if b[i] == '\r' {
			p.skipLF = true
		}
		p.r += i + 1
		ev, ok, err := p.line(b[:i])
		if err != nil || ok {
			return ev, err
		}
	}
}

// lineEnd returns the index of the first CR or LF in b, or -1.
func lineEnd(b []byte) int {
	i := bytes.IndexByte(b, '\n')
	if i < 0 {
		return bytes.IndexByte(b, '\r')
	}
	if j := bytes.IndexByte(b[:i], '\r'); j >= 0 {
		return j
	}
	return i
}

// skipBOM skips a leading UTF-8 BOM once enough bytes decide it.
func (p *parser) skipBOM() error {
	for {
		b := p.buf[p.r:p.w]
		n := min(len(b), len(utf8BOM))
		if !bytes.Equal(b[:n], utf8BOM[:n]) {
			p.started = true
			return nil
		}
		if n == len(utf8BOM) {
			p.r += n
			p.started = true
			return nil
		}
		if err := p.fill(); err != nil {
			return err
		}
	}
}

// fill reads more bytes after the unread ones, moving them to the front
// and growing the buffer as a long line needs, within max.
func (p *parser) fill() error {
	if p.r > 0 {
		p.w = copy(p.buf, p.buf[p.r:p.w])
		p.r = 0
	}
	if p.w > p.max {
		return fmt.Errorf("%w (%d bytes): a line of more than %d bytes", ErrEventTooLarge, p.max, p.w)
	}
	if len(p.buf)-p.w < readSize/2 {
		n := max(2*len(p.buf), readSize)
		nb := make([]byte, n)
		copy(nb, p.buf[:p.w])
		p.buf = nb
	}
	for range 100 { // as bufio does, for a reader that returns 0, nil
		n, err := p.src.Read(p.buf[p.w:])
		p.w += n
		if n > 0 {
			return nil
		}
		if err != nil {
			return err
		}
	}
	return io.ErrNoProgress
}

// line handles one complete line and reports a dispatched event.
func (p *parser) line(line []byte) (Event, bool, error) {
	if len(line) > p.max { // whole in one read, past the bound fill checks
		return Event{}, false, fmt.Errorf("%w (%d bytes): a line of %d bytes", ErrEventTooLarge, p.max, len(line))
	}
	if len(line) == 0 {
		ev, ok := p.dispatch()
		return ev, ok, nil
	}
	if line[0] == ':' {
		return Event{}, false, nil // comment
	}
	field, value := line, []byte(nil)
	if i := bytes.IndexByte(line, ':'); i >= 0 {
		field, value = line[:i], line[i+1:]
		if len(value) > 0 && value[0] == ' ' {
			value = value[1:]
		}
	}
	switch string(field) {
	case "event":
		p.typ = append(p.typ[:0], value...)
	case "data":
		p.data = append(p.data, value...)
		p.data = append(p.data, '\n')
	case "id":
		if bytes.IndexByte(value, 0) < 0 {
			p.idBuf = append(p.idBuf[:0], value...)
		}
	case "retry":
		if n, ok := parseDigits(value); ok {
			p.retry, p.hasRetry, p.sawRetry = n, true, true
		}
	default:
		return Event{}, false, nil
	}
	if len(p.data)+len(p.typ)+len(p.idBuf) > p.max {
		return Event{}, false, fmt.Errorf("%w (%d bytes)", ErrEventTooLarge, p.max)
	}
	return Event{}, false, nil
}

// parseDigits parses one or more ASCII digits; a value that does not fit an
// int64 is refused (the standard sets no bound; internal/ssespec does the
// same).
func parseDigits(v []byte) (int64, bool) {
	if len(v) == 0 {
		return 0, false
	}
	var n int64
	for _, c := range v {
		if c < '0' || c > '9' {
			return 0, false
		}
		d := int64(c - '0')
		if n > (math.MaxInt64-d)/10 {
			return 0, false
		}
		n = n*10 + d
	}
	return n, true
}

// dispatch runs the standard's "dispatch the event" on a blank line.
func (p *parser) dispatch() (Event, bool) {
	p.lastID = append(p.lastID[:0], p.idBuf...)
	if len(p.data) == 0 {
		p.typ = p.typ[:0]
		return Event{}, false
	}
	ev := Event{ID: p.lastID, Type: p.typ, Data: p.data[:len(p.data)-1]}
	if len(ev.Type) == 0 {
		ev.Type = messageType
	}
	p.data = p.data[:0]
	p.typ = p.typ[:0]
	return ev, true
}
