package fastsse

import (
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// grpFrame is a frame whose bytes name it, so a test can tell frames apart.
func grpFrame(name string) *Frame {
	return &Frame{b: []byte("data: " + name + "\n\n")}
}

// grpSince returns what Since(id) replays, as the frames' names joined by
// "|", and what it reports.
func grpSince(r ReplayStore, id string) (string, bool) {
	var names []string
	found := r.Since(id, func(f *Frame) {
		for _, ev := range parseAll(f.Bytes()) {
			names = append(names, ev.Data)
		}
	})
	return strings.Join(names, "|"), found
}

// grpAdd adds one event per id, each frame named after its id ("-" for an
// event without id, numbered so they differ).
func grpAdd(r ReplayStore, ids ...string) {
	for i, id := range ids {
		name := id
		if id == "" {
			name = "-" + strconv.Itoa(i)
		}
		r.Add(id, grpFrame(name))
	}
}

func TestReplayRingSince(t *testing.T) {
	r := NewReplayRing(4)
	grpAdd(r, "1", "2", "3")
	tests := []struct {
		id    string
		want  string
		found bool
	}{
		{"1", "2|3", true},
		{"2", "3", true},
		{"3", "", true}, // the newest: found, nothing to replay
		{"4", "", false},
		{"nope", "", false},
		{"", "", false}, // an empty id is never in the store
	}
	for _, tt := range tests {
		t.Run("id="+tt.id, func(t *testing.T) {
			got, found := grpSince(r, tt.id)
			assert.Equal(t, tt.found, found)
			assert.Equal(t, tt.want, got)
		})
	}
}

func TestReplayRingUnknownCallsNothing(t *testing.T) {
	r := NewReplayRing(2)
	called := false
	assert.False(t, r.Since("x", func(*Frame) { called = true }), "empty ring")
	grpAdd(r, "1", "2")
	assert.False(t, r.Since("x", func(*Frame) { called = true }), "unknown id")
	assert.False(t, called)
}

func TestReplayRingEviction(t *testing.T) {
	r := NewReplayRing(3)
	grpAdd(r, "1", "2", "3", "4", "5")
	for _, id := range []string{"1", "2"} {
		_, found := grpSince(r, id)
		assert.False(t, found, "evicted id %s", id)
	}
	got, found := grpSince(r, "3")
	assert.True(t, found)
	assert.Equal(t, "4|5", got)
	got, found = grpSince(r, "5")
	assert.True(t, found)
	assert.Empty(t, got)
}

// TestReplayRingWraps goes round the ring many times and checks every id in
// the window at every step.
func TestReplayRingWraps(t *testing.T) {
	const size = 5
	r := NewReplayRing(size)
	for n := 1; n <= 50; n++ {
		grpAdd(r, strconv.Itoa(n))
		for id := max(1, n-size-1); id <= n; id++ {
			got, found := grpSince(r, strconv.Itoa(id))
			if id <= n-size {
				require.False(t, found, "after %d adds, id %d", n, id)
				continue
			}
			require.True(t, found, "after %d adds, id %d", n, id)
			require.Equal(t, strings.Join(grpSeq(id+1, n), "|"), got, "after %d adds, id %d", n, id)
		}
	}
}

// TestReplayRingDuplicateIDs: an id used twice resumes after its newest
// occurrence, and stays resumable while that one is kept, even when the older
// one is evicted.
func TestReplayRingDuplicateIDs(t *testing.T) {
	r := NewReplayRing(3)
	r.Add("a", grpFrame("a1"))
	r.Add("b", grpFrame("b"))
	r.Add("a", grpFrame("a2"))
	got, found := grpSince(r, "a")
	assert.True(t, found)
	assert.Empty(t, got, "after the newest a")

	r.Add("c", grpFrame("c")) // evicts a1, keeps a2
	got, found = grpSince(r, "a")
	assert.True(t, found, "a2 is still kept")
	assert.Equal(t, "c", got)

	r.Add("d", grpFrame("d")) // evicts b
	r.Add("e", grpFrame("e")) // evicts a2
	_, found = grpSince(r, "a")
	assert.False(t, found, "both a evicted")
	got, found = grpSince(r, "c")
	assert.True(t, found)
	assert.Equal(t, "d|e", got)
}

// TestReplayRingEventsWithoutID: kept and replayed after an earlier id, but
// never themselves a place to resume from.
func TestReplayRingEventsWithoutID(t *testing.T) {
	r := NewReplayRing(5)
	grpAdd(r, "1", "", "2", "")
	got, found := grpSince(r, "1")
	assert.True(t, found)
	assert.Equal(t, "-1|2|-3", got)
	got, found = grpSince(r, "2")
	assert.True(t, found)
	assert.Equal(t, "-3", got)
	_, found = grpSince(r, "")
	assert.False(t, found)

	grpAdd(r, "", "", "") // the ring of 5 now keeps 2 and four events without id
	got, found = grpSince(r, "2")
	assert.True(t, found)
	assert.Equal(t, "-3|-0|-1|-2", got)
	r.Add("", grpFrame("x")) // evicts 2
	_, found = grpSince(r, "2")
	assert.False(t, found)
}

func TestReplayRingSizeOne(t *testing.T) {
	for _, n := range []int{1, 0, -3} { // below 1 means 1
		t.Run(strconv.Itoa(n), func(t *testing.T) {
			r := NewReplayRing(n)
			_, found := grpSince(r, "1")
			assert.False(t, found, "empty")
			grpAdd(r, "1")
			got, found := grpSince(r, "1")
			assert.True(t, found)
			assert.Empty(t, got)
			grpAdd(r, "2")
			_, found = grpSince(r, "1")
			assert.False(t, found, "1 evicted")
			got, found = grpSince(r, "2")
			assert.True(t, found)
			assert.Empty(t, got)
			r.Add("", grpFrame("x"))
			_, found = grpSince(r, "2")
			assert.False(t, found, "2 evicted by an event without id")
		})
	}
}

// TestReplayRingSharesFrames: the ring hands back the very frames it was
// given, not copies.
func TestReplayRingSharesFrames(t *testing.T) {
	r := NewReplayRing(2)
	f1, f2 := grpFrame("1"), grpFrame("2")
	r.Add("1", f1)
	r.Add("2", f2)
	var got []*Frame
	r.Since("1", func(f *Frame) { got = append(got, f) })
	require.Len(t, got, 1)
	assert.Same(t, f2, got[0])
}

// TestReplayRingConcurrent runs Add and Since together, for the race
// detector, and checks that every replay is a run of consecutive ids ending
// at one that was added. The readers are running before the writer starts,
// each compares at least minChecks replays on every run, and the writer
// waits for a comparison every 100 adds, so that some are made while it runs.
func TestReplayRingConcurrent(t *testing.T) {
	const size, adds = 64, 1000
	// Every reader compares at least minChecks answers, whether or not the
	// writer is still running by then: a run that compared nothing would
	// prove nothing.
	const readers, minChecks = 4, 200
	r := NewReplayRing(size)
	var latest atomic.Int64 // the newest id added
	grpAdd(r, "0")
	start := make(chan struct{}) // the writer starts once every reader runs
	var total atomic.Int64       // comparisons by all readers
	deadline := time.Now().Add(10 * time.Second)
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		<-start
		for i := 1; i <= adds; i++ {
			grpAdd(r, strconv.Itoa(i))
			latest.Store(int64(i))
			if i%100 == 0 { // let the readers compare while the ring moves
				for seen := total.Load(); total.Load() == seen && time.Now().Before(deadline); {
					runtime.Gosched()
				}
			}
		}
	}()
	errs := make(chan string, readers)
	var checks, during [readers]int // comparisons made; those made while the writer ran
	var running sync.WaitGroup
	running.Add(readers)
	for w := range readers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			running.Done()
			for i := 0; latest.Load() < adds || checks[w] < minChecks; i++ {
				if time.Now().After(deadline) {
					errs <- "reader " + strconv.Itoa(w) + ": " + strconv.Itoa(checks[w]) + " comparisons in 10s"
					return
				}
				writing := latest.Load() < adds
				from := int(latest.Load()) - (i*7+w)%(size-8)
				got, found := grpSince(r, strconv.Itoa(from))
				if !found || got == "" { // the writer may have evicted it meanwhile
					continue
				}
				want := strings.Join(grpSeq(from+1, from+strings.Count(got, "|")+1), "|")
				if got != want {
					errs <- "Since(" + strconv.Itoa(from) + ") = " + got
					return
				}
				checks[w]++
				total.Add(1)
				if writing {
					during[w]++
				}
			}
		}()
	}
	running.Wait()
	close(start)
	wg.Wait()
	close(errs)
	for e := range errs {
		t.Error(e)
	}
	for w := range readers {
		if checks[w] < minChecks {
			t.Errorf("reader %d compared %d answers, want at least %d", w, checks[w], minChecks)
		}
	}
	sum := 0
	for _, n := range during {
		sum += n
	}
	if sum == 0 {
		t.Error("no comparison was made while the writer ran")
	}
	t.Logf("comparisons per reader %v, of which while the writer ran %v", checks, during)
}
