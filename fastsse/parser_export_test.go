package fastsse

// The stream tests live in package fastsse_test: they go through package
// router, which imports fastsse, so they cannot be in package fastsse. This
// file lends them the WHATWG parser of sseparse_test.go.

// SpecParser is specParser, for the external test package.
type SpecParser = specParser

// SpecEvent is specEvent, for the external test package.
type SpecEvent = specEvent

// Feed is specParser.feed.
func (p *specParser) Feed(b []byte) []specEvent { return p.feed(b) }

// Pending is specParser.pending.
func (p *specParser) Pending() bool { return p.pending() }

// ParseAll is parseAll.
func ParseAll(b []byte) []SpecEvent { return parseAll(b) }
