package ssetest

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
)

// ChunkedReader decodes an HTTP/1.1 chunked body (RFC 9112, section 7.1)
// read from br. Read returns io.EOF after the last chunk and its trailer
// section, and io.ErrUnexpectedEOF when the connection ends before that:
// a body cut without its last chunk is not a clean end. A malformed size
// line is an error that quotes it. Chunk extensions are ignored.
type ChunkedReader struct {
	br     *bufio.Reader
	left   int64 // bytes of the current chunk not read yet
	inData bool  // in a chunk: its CRLF follows its data
	done   bool
	err    error // sticky
}

// NewChunkedReader decodes the chunked body that br holds next.
func NewChunkedReader(br *bufio.Reader) *ChunkedReader { return &ChunkedReader{br: br} }

// Done reports whether the last chunk has been read.
func (r *ChunkedReader) Done() bool { return r.done }

func (r *ChunkedReader) Read(p []byte) (int, error) {
	if r.done {
		return 0, io.EOF
	}
	if r.err != nil {
		return 0, r.err
	}
	if len(p) == 0 {
		return 0, nil
	}
	if r.left == 0 {
		if err := r.nextChunk(); err != nil {
			if err == io.EOF && !r.done {
				err = io.ErrUnexpectedEOF
			}
			if err != io.EOF {
				r.err = err
			}
			return 0, err
		}
	}
	n, err := r.br.Read(p[:min(int64(len(p)), r.left)])
	r.left -= int64(n)
	if err == io.EOF {
		err = io.ErrUnexpectedEOF
	}
	if err != nil {
		r.err = err
	}
	return n, err
}

// nextChunk reads the CRLF that ends the previous chunk's data and the next
// size line; after the last chunk it reads the trailer section and returns
// io.EOF.
func (r *ChunkedReader) nextChunk() error {
	if r.inData {
		if err := r.crlf(); err != nil {
			return err
		}
		r.inData = false
	}
	line, err := r.line()
	if err != nil {
		return err
	}
	size, _, _ := bytes.Cut(line, []byte(";"))
	size = bytes.TrimRight(size, " \t")
	n, ok := parseHex(size)
	if !ok {
		return fmt.Errorf("ssetest: bad chunk size line %q", line)
	}
	if n == 0 {
		for { // the trailer section, up to its empty line
			l, err := r.line()
			if err != nil {
				return err
			}
			if len(l) == 0 {
				r.done = true
				return io.EOF
			}
		}
	}
	r.left, r.inData = n, true
	return nil
}

// line reads one CRLF-ended line and returns it without the CRLF; it is
// valid until the next read. It allocates nothing, so that tests that count
// a whole process's allocations (the zero-allocation gates) can read
// chunked streams with it.
func (r *ChunkedReader) line() ([]byte, error) {
	s, err := r.br.ReadSlice('\n')
	if err != nil {
		return nil, err
	}
	if !bytes.HasSuffix(s, []byte("\r\n")) {
		return nil, fmt.Errorf("ssetest: chunk line %q does not end in CRLF", s)
	}
	return s[:len(s)-2], nil
}

// parseHex parses a chunk size: one or more hex digits, no sign.
func parseHex(b []byte) (int64, bool) {
	if len(b) == 0 || len(b) > 15 {
		return 0, false
	}
	var n int64
	for _, c := range b {
		var d byte
		switch {
		case '0' <= c && c <= '9':
			d = c - '0'
		case 'a' <= c && c <= 'f':
			d = c - 'a' + 10
		case 'A' <= c && c <= 'F':
			d = c - 'A' + 10
		default:
			return 0, false
		}
		n = n<<4 | int64(d)
	}
	return n, true
}

func (r *ChunkedReader) crlf() error {
	b, err := r.br.Peek(2) // not io.ReadFull into an array: it would escape, an allocation per chunk
	if err != nil {
		if err == io.EOF {
			err = io.ErrUnexpectedEOF
		}
		return err
	}
	if b[0] != '\r' || b[1] != '\n' {
		return fmt.Errorf("ssetest: chunk data not followed by CRLF but %q", b)
	}
	_, _ = r.br.Discard(2)
	return nil
}
