package fastsse

import (
	"errors"
	"net/http"
	"strings"
	"testing"
)

// Helpers of the resume tests (ids with an epoch, paged replay, the gap
// event). Names start with grp, as the group tests' do.

// grpID returns g's id for position seq.
func grpID(g *Group, seq int) string { return formatID(g.epoch, uint64(seq)) }

// grpIDs returns g's ids for positions from..to.
func grpIDs(g *Group, from, to int) []string {
	var s []string
	for i := from; i <= to; i++ {
		s = append(s, grpID(g, i))
	}
	return s
}

// grpReplayIDs writes out what its holds as a connection's turns would
// (frames as they are, a replay page by page) and returns the events' ids,
// "|"-joined.
func grpReplayIDs(tb testing.TB, its []item) string {
	tb.Helper()
	var b []byte
	for _, it := range its {
		if it.kind == kindFrame {
			b = append(b, it.frame.Bytes()...)
		}
	}
	var ids []string
	for _, ev := range parseAll(b) {
		ids = append(ids, ev.ID)
	}
	return strings.Join(ids, "|")
}

// grpResumeOpenInit returns an Init that resumes the connection in g from
// the client's Last-Event-ID and opens the stream, gap or not (Resume tells
// the client of a gap itself). Any other Resume error answers 500, which
// fails the client.
func grpResumeOpenInit(g *Group) func(string, *Request) InitResult[int] {
	return func(lastID string, req *Request) InitResult[int] {
		if err := g.Resume(req.Conn(), lastID); err != nil && !errors.Is(err, ErrReplayGap) {
			return Reply(http.StatusInternalServerError, []byte(err.Error()), 0)
		}
		return Open(0)
	}
}
