package loadtest

import (
	"bytes"
	"math"
)

// Event is one dispatched server-sent event. Its slices belong to the
// Parser and are valid only during the EventHandler call.
type Event struct {
	// ID is the last event ID buffer: the value of the most recent id field,
	// kept from event to event as WHATWG says.
	ID []byte
	// IDSet reports whether this event itself carried an id field.
	IDSet bool
	// Type is the event type; empty means "message".
	Type []byte
	// Data is the data lines joined with LF.
	Data []byte
}

// EventHandler receives the events a Parser dispatches.
type EventHandler interface {
	OnEvent(ev *Event)
}

// maxKeep is the largest buffer a Parser keeps between events; a bigger one
// is dropped after use, so that one large event does not pin memory on
// every connection.
const maxKeep = 4 << 10

// Parser is a push-style event-stream parser (WHATWG HTML, "Parsing an event
// stream"): lines end at CRLF, LF or CR, wherever the pieces are split; data
// lines are joined with LF; comments and unknown fields are ignored; one
// leading byte order mark is skipped. The zero value is ready. It holds no
// buffer while no line or event is half-received.
type Parser struct {
	line     []byte // a line split across Feed calls
	data     []byte // data lines of the event being received, each + LF
	typ      []byte
	id       []byte
	ev       Event
	retry    int64 // last valid retry field in milliseconds
	idSet    bool
	skipLF   bool // the last piece ended in CR: a leading LF belongs to it
	started  bool // the first line (and a BOM) has been seen
	hasRetry bool
}

// Reset makes p ready for a new stream, keeping nothing.
func (p *Parser) Reset() { *p = Parser{} }

// SetLastEventID sets the last event ID buffer, as an EventSource keeps it
// across its reconnections: a stream that ends before its first id leaves
// it as it was.
func (p *Parser) SetLastEventID(id []byte) { p.id = append(p.id[:0], id...) }

// LastEventID returns the last event ID buffer, as a reconnecting client
// sends it in Last-Event-ID. The slice is valid until the next Feed.
func (p *Parser) LastEventID() []byte { return p.id }

// Retry returns the last valid retry field in milliseconds, and whether
// there was one.
func (p *Parser) Retry() (int64, bool) { return p.retry, p.hasRetry }

// Feed parses b, a piece of the stream, calling h for each complete event.
// It does not retain b.
func (p *Parser) Feed(b []byte, h EventHandler) {
	if p.skipLF && len(b) > 0 {
		p.skipLF = false
		if b[0] == '\n' {
			b = b[1:]
		}
	}
	for len(b) > 0 {
		i := indexEOL(b)
		if i < 0 {
			p.line = append(p.line, b...)
			return
		}
		ln := b[:i]
		if len(p.line) > 0 {
			p.line = append(p.line, ln...)
			ln = p.line
		}
		p.processLine(ln, h)
		p.line = trim(p.line)
		if b[i] == '\r' {
			if i+1 == len(b) {
				p.skipLF = true
				return
			}
			if b[i+1] == '\n' {
				i++
			}
		}
		b = b[i+1:]
	}
}

// indexEOL returns the index of the first CR or LF in b, or -1.
func indexEOL(b []byte) int {
	for i, c := range b {
		if c == '\n' || c == '\r' {
			return i
		}
	}
	return -1
}

// trim empties buf, dropping it when it has grown beyond maxKeep.
func trim(buf []byte) []byte {
	if cap(buf) > maxKeep {
		return nil
	}
	return buf[:0]
}

func (p *Parser) processLine(ln []byte, h EventHandler) {
	if !p.started {
		p.started = true
		ln = bytes.TrimPrefix(ln, []byte("\xEF\xBB\xBF"))
	}
	if len(ln) == 0 {
		p.dispatch(h)
		return
	}
	if ln[0] == ':' {
		return // comment
	}
	field, value := ln, ln[len(ln):]
	if c := bytes.IndexByte(ln, ':'); c >= 0 {
		field, value = ln[:c], ln[c+1:]
		if len(value) > 0 && value[0] == ' ' {
			value = value[1:]
		}
	}
	switch string(field) {
	case "data":
		p.data = append(p.data, value...)
		p.data = append(p.data, '\n')
	case "event":
		p.typ = append(p.typ[:0], value...)
	case "id":
		if bytes.IndexByte(value, 0) < 0 {
			p.id = append(p.id[:0], value...)
			p.idSet = true
		}
	case "retry":
		if n, ok := parseDigits(value); ok {
			p.retry, p.hasRetry = n, true
		}
	}
}

func (p *Parser) dispatch(h EventHandler) {
	if len(p.data) == 0 {
		p.typ = p.typ[:0]
		p.idSet = false
		return
	}
	p.ev = Event{ID: p.id, IDSet: p.idSet, Type: p.typ, Data: p.data[:len(p.data)-1]}
	h.OnEvent(&p.ev)
	p.ev = Event{}
	p.data = trim(p.data)
	p.typ = p.typ[:0]
	p.idSet = false
}

// parseDigits parses b, which must be one or more ASCII digits and fit in an
// int64.
func parseDigits(b []byte) (int64, bool) {
	if len(b) == 0 || len(b) > 19 {
		return 0, false
	}
	var n int64
	for _, c := range b {
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

// leadingInt parses the ASCII digits at the start of b (a Unix-nanoseconds
// time has 19).
func leadingInt(b []byte) (int64, bool) {
	i := 0
	for i < len(b) && i < 20 && b[i] >= '0' && b[i] <= '9' {
		i++
	}
	return parseDigits(b[:i])
}
