// Package ssespec is a WHATWG event-stream parser for tests: what a browser's
// EventSource makes of the bytes a server sends. The project's tests and
// benchmarks, in every module, check their output with it.
package ssespec

import (
	"bytes"
	"strconv"
	"strings"
)

// Parser interprets an event stream the way a browser's EventSource does,
// written from the WHATWG HTML standard, "Interpreting an event stream"
// (https://html.spec.whatwg.org/multipage/server-sent-events.html#event-stream-interpretation).
// Tests use it to check what a client really receives, from encoder output or
// from a stream read off the network.
//
// It works on bytes and does not UTF-8 decode: the standard's decoder turns
// invalid sequences into U+FFFD but never swallows an ASCII byte, so the line
// and field structure (CR, LF, colon) is the same either way, and byte-exact
// data is more useful to tests. A leading UTF-8 BOM is skipped, as the
// standard's decode step does.
//
// Input may be fed in chunks split anywhere, including between the CR and LF
// of a CRLF and inside the BOM. The zero value is a fresh stream. Not safe for
// concurrent use.
type Parser struct {
	started bool   // past the BOM check
	bom     []byte // leading bytes held while they may still be a BOM
	skipLF  bool   // the last line ended at a CR: a following LF is part of that break
	line    []byte // the incomplete line

	data      []byte // data buffer
	eventType string // event type buffer
	// LastEventID is the last event ID buffer. Like the standard's, it is not
	// reset on dispatch: it carries over to later events.
	LastEventID string
	// Retry is the stream's reconnection time in milliseconds, valid when
	// HasRetry; set by every valid retry field.
	Retry    int64
	HasRetry bool

	blockRetry    int64 // retry seen since the last blank line
	blockHasRetry bool
	blockIDSet    bool     // an id field was accepted since the last blank line
	blockComments []string // comments since the last blank line
	blockLines    bool     // any line since the last blank line
}

// Event is one dispatched MessageEvent.
type Event struct {
	Type string // "message" when the stream gave none
	Data string // with the single trailing LF removed
	ID   string // the lastEventId at dispatch (the last event ID buffer)
	// Retry is the value of the last valid retry field in this event's block
	// (between the previous blank line and the one that dispatched it), valid
	// when HasRetry. The standard makes retry a stream setting; the parser
	// keeps that in Parser.Retry.
	Retry    int64
	HasRetry bool
	// IDSet reports whether the block itself set the id (an id field without
	// NUL), as opposed to ID carried over from an earlier event.
	IDSet bool
}

// Block is what one blank line ended: the lines since the previous blank
// line, as the standard interprets them. Dispatched says whether it
// dispatched Event; a block of comments only (a heartbeat) or of a retry
// field only (a retry hint) dispatches nothing. A browser sees only the
// dispatched events; tests of heartbeats and retry hints need the rest.
type Block struct {
	Event      Event // valid when Dispatched; Retry, HasRetry and IDSet always
	Dispatched bool
	Comments   []string // the comment lines' text, without the colon
}

var utf8BOM = []byte{0xEF, 0xBB, 0xBF}

// Feed interprets b and returns the events dispatched by it, in order. A
// partial line or an event not yet ended by a blank line is kept for the next
// call.
func (p *Parser) Feed(b []byte) []Event {
	var out []Event
	p.feed(b, func(bl Block) {
		if bl.Dispatched {
			out = append(out, bl.Event)
		}
	})
	return out
}

// FeedBlocks is Feed that returns every block ended by b, dispatched or
// not, in order. A blank line with no line before it (a second blank line in
// a row) ends no block.
func (p *Parser) FeedBlocks(b []byte) []Block {
	var out []Block
	p.feed(b, func(bl Block) { out = append(out, bl) })
	return out
}

func (p *Parser) feed(b []byte, emit func(Block)) {
	if !p.started {
		p.bom = append(p.bom, b...)
		n := min(len(p.bom), len(utf8BOM))
		if !bytes.Equal(p.bom[:n], utf8BOM[:n]) {
			b, p.bom, p.started = p.bom, nil, true // not a BOM: interpret all of it
		} else if n == len(utf8BOM) {
			b, p.bom, p.started = p.bom[n:], nil, true // a BOM: skip it
		} else {
			return // still a prefix of a BOM: wait for more
		}
	}
	for len(b) > 0 {
		if p.skipLF {
			p.skipLF = false
			if b[0] == '\n' {
				b = b[1:]
				continue
			}
		}
		i := bytes.IndexAny(b, "\r\n")
		if i < 0 {
			p.line = append(p.line, b...)
			break
		}
		p.line = append(p.line, b[:i]...)
		if b[i] == '\r' {
			p.skipLF = true
		}
		b = b[i+1:]
		if bl, ok := p.processLine(p.line); ok {
			emit(bl)
		}
		p.line = p.line[:0]
	}
}

// Pending reports whether the parser holds anything that a later blank line
// could still dispatch or complete: a partial line or data not yet dispatched.
func (p *Parser) Pending() bool {
	return len(p.line) > 0 || len(p.data) > 0 || len(p.bom) > 0
}

// processLine handles one complete line and reports the block that a blank
// line ended.
func (p *Parser) processLine(line []byte) (Block, bool) {
	if len(line) == 0 {
		if !p.blockLines {
			return Block{}, false
		}
		ev, ok := p.dispatch()
		bl := Block{Event: ev, Dispatched: ok, Comments: p.blockComments}
		p.blockComments, p.blockLines = nil, false
		return bl, true
	}
	p.blockLines = true
	if line[0] == ':' {
		p.blockComments = append(p.blockComments, string(line[1:]))
		return Block{}, false // comment
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
		p.eventType = string(value)
	case "data":
		p.data = append(p.data, value...)
		p.data = append(p.data, '\n')
	case "id":
		if bytes.IndexByte(value, 0) < 0 {
			p.LastEventID = string(value)
			p.blockIDSet = true
		}
	case "retry":
		if isASCIIDigits(value) {
			// The standard sets no upper bound; a value that does not fit an
			// int64 is ignored here.
			if n, err := strconv.ParseInt(string(value), 10, 64); err == nil {
				p.Retry, p.HasRetry = n, true
				p.blockRetry, p.blockHasRetry = n, true
			}
		}
	}
	return Block{}, false
}

// dispatch runs the standard's "dispatch the event" on a blank line.
func (p *Parser) dispatch() (Event, bool) {
	ev := Event{
		ID:       p.LastEventID,
		Retry:    p.blockRetry,
		HasRetry: p.blockHasRetry,
		IDSet:    p.blockIDSet,
	}
	p.blockRetry, p.blockHasRetry, p.blockIDSet = 0, false, false
	if len(p.data) == 0 {
		p.eventType = ""
		return ev, false
	}
	data := p.data
	if data[len(data)-1] == '\n' {
		data = data[:len(data)-1]
	}
	ev.Data = string(data)
	ev.Type = p.eventType
	if ev.Type == "" {
		ev.Type = "message"
	}
	p.data = p.data[:0]
	p.eventType = ""
	return ev, true
}

// isASCIIDigits reports whether v is one or more ASCII digits. (Browsers
// ignore an empty retry value.)
func isASCIIDigits(v []byte) bool {
	if len(v) == 0 {
		return false
	}
	for _, c := range v {
		if c < '0' || c > '9' {
			return false
		}
	}
	return true
}

// ParseAll interprets b as a whole stream, from its start to its end, and
// returns the events dispatched. An event not ended by a blank line is
// discarded, as the standard says for the end of the stream.
func ParseAll(b []byte) []Event {
	var p Parser
	return p.Feed(b)
}

// NormalizeBreaks turns CRLF and lone CR into LF, as a client sees data lines.
func NormalizeBreaks(s string) string {
	s = strings.ReplaceAll(s, "\r\n", "\n")
	return strings.ReplaceAll(s, "\r", "\n")
}
