package fastsse

// The stream tests live in package fastsse_test: they go through package
// router, which imports fastsse, so they cannot be in package fastsse. These
// names lend them the WHATWG parser.

// SpecParser is the WHATWG event-stream parser.
type SpecParser = specParser

// SpecEvent is one event SpecParser dispatched.
type SpecEvent = specEvent

// ParseAll is parseAll.
func ParseAll(b []byte) []SpecEvent { return parseAll(b) }
