package loadtest

import (
	"bytes"
	"errors"
	"strconv"
)

// bodyDecoder framings of an HTTP/1.1 response.
const (
	framingClose   = iota // the body runs until the connection closes
	framingChunked        // Transfer-Encoding: chunked
	framingLength         // Content-Length
)

// Chunked decoder states.
const (
	chSize      = iota // hex digits of a chunk size
	chExt              // a chunk extension, up to the line end
	chSizeLF           // the LF after a chunk size's CR
	chData             // chunk data
	chDataCR           // the CRLF after chunk data
	chDataLF           // its LF
	chTrailer          // the start of a trailer line (or the final blank line)
	chTrailerLn        // inside a trailer line
	chTrailerLF        // the LF of the final blank line
	chDone             // the last chunk and trailers have been read
)

var (
	errChunked = errors.New("bad chunked encoding")
	errHeader  = errors.New("bad response header")
	// errEnded is returned by Feed once the body has ended (last chunk,
	// or Content-Length reached).
	errEnded = errors.New("stream ended by server")
)

// bodyDecoder decodes an HTTP/1.1 response body pushed in pieces (chunked,
// Content-Length, or close-delimited) into an SSE Parser. The zero value
// decodes a close-delimited body.
type bodyDecoder struct {
	Parser  Parser
	n       int64 // bytes left in the chunk, or of the Content-Length body
	framing uint8
	st      uint8
	digits  uint8
}

// Reset makes b ready for a new response body with the given framing
// (framingClose, framingChunked, framingLength with length n).
func (b *bodyDecoder) Reset(framing uint8, n int64) {
	b.Parser.Reset()
	b.framing, b.n, b.st, b.digits = framing, n, chSize, 0
}

// Feed decodes p, passing the event stream to h. It returns errEnded once
// the body is complete and a wrapped errChunked when the framing is broken.
// It does not retain p.
func (b *bodyDecoder) Feed(p []byte, h EventHandler) error {
	switch b.framing {
	case framingClose:
		b.Parser.Feed(p, h)
		return nil
	case framingLength:
		if int64(len(p)) >= b.n {
			b.Parser.Feed(p[:b.n], h)
			b.n = 0
			return errEnded
		}
		b.n -= int64(len(p))
		b.Parser.Feed(p, h)
		return nil
	}
	for len(p) > 0 {
		switch b.st {
		case chData:
			k := len(p)
			if int64(k) > b.n {
				k = int(b.n)
			}
			b.Parser.Feed(p[:k], h)
			p = p[k:]
			if b.n -= int64(k); b.n == 0 {
				b.st = chDataCR
			}
			continue
		case chDone:
			return errEnded
		}
		c := p[0]
		p = p[1:]
		switch b.st {
		case chSize:
			switch {
			case c == ';' || c == ' ' || c == '\t':
				b.st = chExt
			case c == '\r':
				b.st = chSizeLF
			case c == '\n':
				if !b.sizeDone() {
					return errChunked
				}
			default:
				v, ok := unhex(c)
				if !ok || b.digits >= 15 {
					return errChunked
				}
				b.n = b.n<<4 | int64(v)
				b.digits++
			}
		case chExt:
			switch c {
			case '\r':
				b.st = chSizeLF
			case '\n':
				if !b.sizeDone() {
					return errChunked
				}
			}
		case chSizeLF:
			if c != '\n' || !b.sizeDone() {
				return errChunked
			}
		case chDataCR:
			switch c {
			case '\r':
				b.st = chDataLF
			case '\n':
				b.st = chSize
			default:
				return errChunked
			}
		case chDataLF:
			if c != '\n' {
				return errChunked
			}
			b.st = chSize
		case chTrailer:
			switch c {
			case '\r':
				b.st = chTrailerLF
			case '\n':
				b.st = chDone
			default:
				b.st = chTrailerLn
			}
		case chTrailerLn:
			if c == '\n' {
				b.st = chTrailer
			}
		case chTrailerLF:
			if c != '\n' {
				return errChunked
			}
			b.st = chDone
		}
	}
	if b.st == chDone {
		return errEnded
	}
	return nil
}

// sizeDone ends a chunk-size line; false when it had no digits.
func (b *bodyDecoder) sizeDone() bool {
	if b.digits == 0 {
		return false
	}
	b.digits = 0
	if b.n == 0 {
		b.st = chTrailer
	} else {
		b.st = chData
	}
	return true
}

func unhex(c byte) (byte, bool) {
	switch {
	case '0' <= c && c <= '9':
		return c - '0', true
	case 'a' <= c && c <= 'f':
		return c - 'a' + 10, true
	case 'A' <= c && c <= 'F':
		return c - 'A' + 10, true
	}
	return 0, false
}

// response is what parseResponseHeader finds in a response header.
type response struct {
	status      int
	framing     uint8
	length      int64
	eventStream bool // Content-Type: text/event-stream
}

// parseResponseHeader parses the status line and header fields in hdr (up to
// and without the blank line).
func parseResponseHeader(hdr []byte) (response, error) {
	var r response
	lines := bytes.Split(hdr, []byte("\n"))
	st := bytes.TrimRight(lines[0], "\r")
	if !bytes.HasPrefix(st, []byte("HTTP/1.")) || len(st) < 12 || st[8] != ' ' {
		return r, errHeader
	}
	code, err := strconv.Atoi(string(st[9:12]))
	if err != nil {
		return r, errHeader
	}
	r.status = code
	for _, ln := range lines[1:] {
		ln = bytes.TrimRight(ln, "\r")
		c := bytes.IndexByte(ln, ':')
		if c <= 0 {
			continue
		}
		name, value := ln[:c], bytes.TrimSpace(ln[c+1:])
		switch {
		case bytes.EqualFold(name, []byte("Transfer-Encoding")):
			if bytes.Contains(bytes.ToLower(value), []byte("chunked")) {
				r.framing = framingChunked
			}
		case bytes.EqualFold(name, []byte("Content-Length")):
			n, err := strconv.ParseInt(string(value), 10, 64)
			if err != nil || n < 0 {
				return r, errHeader
			}
			if r.framing != framingChunked {
				r.framing, r.length = framingLength, n
			}
		case bytes.EqualFold(name, []byte("Content-Type")):
			r.eventStream = len(value) >= 17 && bytes.EqualFold(value[:17], []byte("text/event-stream"))
		}
	}
	return r, nil
}

// headerEnd returns the length of the response header in b, including the
// blank line that ends it, or -1 when b does not hold it all.
func headerEnd(b []byte) int {
	if i := bytes.Index(b, []byte("\r\n\r\n")); i >= 0 {
		return i + 4
	}
	if i := bytes.Index(b, []byte("\n\n")); i >= 0 {
		return i + 2
	}
	return -1
}
