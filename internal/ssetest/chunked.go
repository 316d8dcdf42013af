package ssetest

import (
	"bufio"
	"fmt"
	"io"
	"strconv"
	"strings"
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
	size, _, _ := strings.Cut(line, ";")
	size = strings.TrimRight(size, " \t")
	n, err := strconv.ParseInt(size, 16, 64)
	if err != nil || n < 0 || size == "" || strings.HasPrefix(size, "+") || strings.HasPrefix(size, "-") {
		return fmt.Errorf("ssetest: bad chunk size line %q", line)
	}
	if n == 0 {
		for { // the trailer section, up to its empty line
			l, err := r.line()
			if err != nil {
				return err
			}
			if l == "" {
				r.done = true
				return io.EOF
			}
		}
	}
	r.left, r.inData = n, true
	return nil
}

// line reads one CRLF-ended line and returns it without the CRLF.
func (r *ChunkedReader) line() (string, error) {
	s, err := r.br.ReadString('\n')
	if err != nil {
		return "", err
	}
	if !strings.HasSuffix(s, "\r\n") {
		return "", fmt.Errorf("ssetest: chunk line %q does not end in CRLF", s)
	}
	return s[:len(s)-2], nil
}

func (r *ChunkedReader) crlf() error {
	var b [2]byte
	if _, err := io.ReadFull(r.br, b[:]); err != nil {
		return err
	}
	if b != [2]byte{'\r', '\n'} {
		return fmt.Errorf("ssetest: chunk data not followed by CRLF but %q", b[:])
	}
	return nil
}
