package compare

import "github.com/lasse-go/lasse/internal/ssespec"

// The WHATWG parser the tests check the wire with lives in internal/ssespec,
// shared with package fastsse; these names keep the tests short.
type (
	specParser = ssespec.Parser
	specEvent  = ssespec.Event
)

func parseAll(b []byte) []specEvent { return ssespec.ParseAll(b) }

func normalizeBreaks(s string) string { return ssespec.NormalizeBreaks(s) }
