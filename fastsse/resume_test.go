package fastsse

import (
	"bytes"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
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
	b := grpWriteOut(tb, its)
	var ids []string
	for _, ev := range parseAll(b) {
		ids = append(ids, ev.ID)
	}
	return strings.Join(ids, "|")
}

// grpWriteOut returns the bytes a connection's turns would write for its:
// frames as they are, a replay page by page, each page at most
// replayPageBytes or one frame.
func grpWriteOut(tb testing.TB, its []item) []byte {
	tb.Helper()
	var b []byte
	for _, it := range its {
		switch it.kind {
		case kindFrame:
			b = append(b, it.frame.Bytes()...)
		case kindReplay:
			for more := true; more; {
				var page []byte
				var n int
				page, n, more = it.replay.page(nil)
				if len(page) > replayPageBytes && n > 1 {
					tb.Fatalf("a page of %d bytes and %d events", len(page), n)
				}
				b = append(b, page...)
			}
		}
	}
	return b
}

// grpPublishN publishes n events of size bytes of data each to g.
func grpPublishN(tb testing.TB, g *Group, n, size int) {
	tb.Helper()
	data := bytes.Repeat([]byte{'x'}, size)
	for range n {
		if _, err := g.Publish(&Event{DataBytes: data}); err != nil {
			tb.Fatal(err)
		}
	}
}

// TestResumePaged: a replay is one item that writes itself a page at a
// time, no page over replayPageBytes, and live events follow it.
func TestResumePaged(t *testing.T) {
	ep := grpEndpoint(t, &Options{QueueSize: 4})
	g := NewGroup(&GroupOptions{Replay: 5000})
	grpPublishN(t, g, 3000, 1000)
	c := grpBareConn(t, ep)
	require.NoError(t, g.Resume(c, grpID(g, 1)))
	grpPublishN(t, g, 2, 10) // live, behind the replay
	its := grpTake(c)
	require.Len(t, its, 3)
	require.Equal(t, kindReplay, its[0].kind)

	pages := 0
	var b []byte
	for more := true; more; pages++ {
		var page []byte
		page, _, more = its[0].replay.page(nil)
		require.LessOrEqual(t, len(page), replayPageBytes)
		b = append(b, page...)
	}
	for _, it := range its[1:] {
		b = append(b, it.frame.Bytes()...)
	}
	var ids []string
	for _, ev := range parseAll(b) {
		ids = append(ids, ev.ID)
	}
	assert.Equal(t, grpIDs(g, 2, 3002), ids)
	assert.Greater(t, pages, 40, "about 3 MB in pages of 64 KiB")
}

// TestResumeFrameLargerThanPage: an event larger than a page is a page of
// its own.
func TestResumeFrameLargerThanPage(t *testing.T) {
	ep := grpEndpoint(t, nil)
	g := NewGroup(&GroupOptions{Replay: 10})
	grpPublishN(t, g, 1, 10)
	grpPublishN(t, g, 2, 3*replayPageBytes)
	grpPublishN(t, g, 3, 10)
	c := grpBareConn(t, ep)
	require.NoError(t, g.Resume(c, grpID(g, 1)))
	its := grpTake(c)
	require.Len(t, its, 1)
	var counts []int
	for more := true; more; {
		var n int
		_, n, more = its[0].replay.page(nil)
		counts = append(counts, n)
	}
	assert.Equal(t, []int{1, 1, 3}, counts)
}

// TestResumeOvertaken: a ring overtaken by publishing while a client reads
// its replay slowly tells the client, in order: what it got, a GapEvent
// (data: the last id it got; id: its join position), then the live events
// after that position. Nothing is passed off as continuous.
func TestResumeOvertaken(t *testing.T) {
	ep := grpEndpoint(t, &Options{QueueSize: 1000})
	g := NewGroup(&GroupOptions{Replay: 100})
	grpPublishN(t, g, 100, 2000)
	c := grpBareConn(t, ep)
	require.NoError(t, g.Resume(c, grpID(g, 1)))
	its := grpTake(c)
	require.Len(t, its, 1)
	first, n, more := its[0].replay.page(nil)
	require.True(t, more)
	grpPublishN(t, g, 100, 2000) // evicts all the ring held: 101..200 queued live
	rest, m, more := its[0].replay.page(nil)
	assert.False(t, more)
	assert.Equal(t, 1, m)
	evs := parseAll(append(append(first, rest...), grpWriteOut(t, grpTake(c))...))
	require.Len(t, evs, n+1+100)
	for i := range n {
		require.Equal(t, grpID(g, 2+i), evs[i].ID)
	}
	gap := evs[n]
	assert.Equal(t, GapEvent, gap.Type)
	assert.Equal(t, grpID(g, 1+n), gap.Data, "the last event it got")
	assert.Equal(t, grpID(g, 100), gap.ID, "where it goes on from")
	for i, ev := range evs[n+1:] {
		require.Equal(t, grpID(g, 101+i), ev.ID)
	}
}
