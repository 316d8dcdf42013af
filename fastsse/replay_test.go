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

// grpRead returns what Read(after) replays, as the frames' names joined by
// "|", and what it reports.
func grpRead(r ReplayStore, after uint64) (string, bool) {
	var names []string
	held := r.Read(after, func(_ uint64, f *Frame) bool {
		for _, ev := range parseAll(f.Bytes()) {
			names = append(names, ev.Data)
		}
		return true
	})
	return strings.Join(names, "|"), held
}

// grpAdd adds the events at positions seqs, each frame named after its
// position.
func grpAdd(r ReplayStore, seqs ...uint64) {
	for _, s := range seqs {
		r.Add(s, grpFrame(strconv.FormatUint(s, 10)))
	}
}

// grpRange returns the positions from..to.
func grpRange(from, to uint64) []uint64 {
	var s []uint64
	for i := from; i <= to; i++ {
		s = append(s, i)
	}
	return s
}

func TestReplayRingRead(t *testing.T) {
	r := NewReplayRing(4, 0)
	grpAdd(r, 1, 2, 3)
	tests := []struct {
		after uint64
		want  string
		held  bool
	}{
		{0, "1|2|3", true}, // before the first: all of it
		{1, "2|3", true},
		{2, "3", true},
		{3, "", true}, // the newest: held, nothing to replay
		{4, "", false},
		{99, "", false},
	}
	for _, tt := range tests {
		t.Run("after="+strconv.FormatUint(tt.after, 10), func(t *testing.T) {
			got, held := grpRead(r, tt.after)
			assert.Equal(t, tt.held, held)
			assert.Equal(t, tt.want, got)
		})
	}
}

func TestReplayRingNotHeldCallsNothing(t *testing.T) {
	r := NewReplayRing(2, 0)
	called := false
	assert.False(t, r.Read(1, func(uint64, *Frame) bool { called = true; return true }), "empty ring")
	grpAdd(r, 1, 2, 3, 4)
	assert.False(t, r.Read(1, func(uint64, *Frame) bool { called = true; return true }), "evicted")
	assert.False(t, r.Read(5, func(uint64, *Frame) bool { called = true; return true }), "ahead")
	assert.False(t, called)
}

// TestReplayRingResumesN: a ring of N resumes a client that missed N
// events, the id just before the oldest kept one included.
func TestReplayRingResumesN(t *testing.T) {
	r := NewReplayRing(3, 0)
	grpAdd(r, 1, 2, 3, 4, 5) // keeps 3, 4, 5
	got, held := grpRead(r, 2)
	assert.True(t, held, "2 is just before the oldest kept: nothing is lost")
	assert.Equal(t, "3|4|5", got)
	_, held = grpRead(r, 1)
	assert.False(t, held, "4 events missed, 3 kept")
	got, held = grpRead(r, 5)
	assert.True(t, held)
	assert.Empty(t, got)
}

// TestReplayRingWraps goes round the ring many times and checks every
// position in the window at every step.
func TestReplayRingWraps(t *testing.T) {
	const size = 5
	r := NewReplayRing(size, 0)
	for n := uint64(1); n <= 50; n++ {
		grpAdd(r, n)
		for after := uint64(0); after <= n+1; after++ {
			got, held := grpRead(r, after)
			if after+size < n || after > n {
				require.False(t, held, "after %d adds, after %d", n, after)
				continue
			}
			require.True(t, held, "after %d adds, after %d", n, after)
			var want []string
			for i := after + 1; i <= n; i++ {
				want = append(want, strconv.FormatUint(i, 10))
			}
			require.Equal(t, strings.Join(want, "|"), got, "after %d adds, after %d", n, after)
		}
	}
}

// TestReplayRingBytes: the ring keeps the latest events whose frames fit in
// its byte bound, whatever its count allows.
func TestReplayRingBytes(t *testing.T) {
	big := func(n int) *Frame { return &Frame{b: make([]byte, n)} }
	r := NewReplayRing(1000, 100)
	for s := uint64(1); s <= 10; s++ {
		r.Add(s, big(30)) // three fit in 100 bytes
	}
	assert.Equal(t, 90, r.bytes)
	assert.Equal(t, 3, r.n)
	assert.True(t, r.Read(7, func(uint64, *Frame) bool { return true }))
	assert.False(t, r.Read(6, func(uint64, *Frame) bool { return true }))

	r.Add(11, big(101)) // larger than the bound: not kept, and everything before it is gone
	assert.Zero(t, r.n)
	assert.Zero(t, r.bytes)
	assert.False(t, r.Read(10, func(uint64, *Frame) bool { return true }), "the client missed 11")
	got, held := grpRead(r, 11)
	assert.True(t, held)
	assert.Empty(t, got)
	r.Add(12, big(100))
	assert.True(t, r.Read(11, func(uint64, *Frame) bool { return true }))
	assert.Equal(t, 100, r.bytes)
}

// TestReplayRingDefaultBytes: the default byte bound holds, with a ring of
// many events of 1 MiB each.
func TestReplayRingDefaultBytes(t *testing.T) {
	r := NewReplayRing(1000, 0)
	f := &Frame{b: make([]byte, 1<<20)}
	for s := uint64(1); s <= 100; s++ {
		r.Add(s, f)
	}
	assert.LessOrEqual(t, r.bytes, DefaultReplayBytes)
	assert.Equal(t, DefaultReplayBytes/(1<<20), r.n)
}

// TestReplayRingSparse: positions need not be consecutive (a bus's are
// shared with other subjects); there is nothing between two of them.
func TestReplayRingSparse(t *testing.T) {
	r := NewReplayRing(2, 0)
	grpAdd(r, 3, 7, 9) // keeps 7, 9; holds everything after 3
	got, held := grpRead(r, 3)
	assert.True(t, held)
	assert.Equal(t, "7|9", got)
	got, held = grpRead(r, 5)
	assert.True(t, held)
	assert.Equal(t, "7|9", got)
	_, held = grpRead(r, 2)
	assert.False(t, held)
	r.Add(8, grpFrame("8")) // not above the last: ignored
	got, _ = grpRead(r, 7)
	assert.Equal(t, "9", got)
}

func TestReplayRingReadStops(t *testing.T) {
	r := NewReplayRing(8, 0)
	grpAdd(r, grpRange(1, 6)...)
	var seen []uint64
	held := r.Read(1, func(s uint64, _ *Frame) bool {
		seen = append(seen, s)
		return len(seen) < 3
	})
	assert.True(t, held)
	assert.Equal(t, []uint64{2, 3, 4}, seen)
}

func TestReplayRingSizeOne(t *testing.T) {
	for _, n := range []int{1, 0, -3} { // below 1 means 1
		t.Run(strconv.Itoa(n), func(t *testing.T) {
			r := NewReplayRing(n, 0)
			_, held := grpRead(r, 1)
			assert.False(t, held, "empty")
			grpAdd(r, 1)
			got, held := grpRead(r, 0)
			assert.True(t, held)
			assert.Equal(t, "1", got)
			grpAdd(r, 2)
			_, held = grpRead(r, 0)
			assert.False(t, held, "1 evicted")
			got, held = grpRead(r, 1)
			assert.True(t, held, "a ring of 1 resumes 1")
			assert.Equal(t, "2", got)
		})
	}
}

// TestReplayRingSharesFrames: the ring hands back the very frames it was
// given, not copies.
func TestReplayRingSharesFrames(t *testing.T) {
	r := NewReplayRing(2, 0)
	f1, f2 := grpFrame("1"), grpFrame("2")
	r.Add(1, f1)
	r.Add(2, f2)
	var got []*Frame
	r.Read(1, func(_ uint64, f *Frame) bool { got = append(got, f); return true })
	require.Len(t, got, 1)
	assert.Same(t, f2, got[0])
}

// TestReplayRingEpoch: every ring has an epoch of its own, 8 characters of
// [0-9a-v], and starts at position 0.
func TestReplayRingEpoch(t *testing.T) {
	seen := map[string]bool{}
	for range 100 {
		e, last := NewReplayRing(1, 0).Position()
		assert.Zero(t, last)
		require.Len(t, e, 8)
		assert.Equal(t, -1, strings.IndexFunc(e, func(r rune) bool {
			return (r < '0' || r > '9') && (r < 'a' || r > 'v')
		}), e)
		assert.False(t, seen[e], "epoch %s twice", e)
		seen[e] = true
	}
}

func TestParseID(t *testing.T) {
	tests := []struct {
		id    string
		epoch string
		seq   uint64
		ok    bool
	}{
		{"k3x9q2mz-42", "k3x9q2mz", 42, true},
		{"k3x9q2mz-0", "k3x9q2mz", 0, true},
		{"a-b-7", "a-b", 7, true}, // the last dash splits
		{"-7", "", 7, true},
		{"42", "", 0, false}, // a bare number: an old id, or another server's
		{"k3x9q2mz-", "", 0, false},
		{"k3x9q2mz-042", "", 0, false},
		{"k3x9q2mz-+4", "", 0, false},
		{"k3x9q2mz--4", "k3x9q2mz-", 4, true},
		{"k3x9q2mz-4x", "", 0, false},
		{"k3x9q2mz-18446744073709551616", "", 0, false}, // past uint64
		{"", "", 0, false},
	}
	for _, tt := range tests {
		t.Run(tt.id, func(t *testing.T) {
			epoch, seq, ok := parseID(tt.id)
			assert.Equal(t, tt.ok, ok)
			if tt.ok {
				assert.Equal(t, tt.epoch, epoch)
				assert.Equal(t, tt.seq, seq)
				assert.Equal(t, tt.id, formatID(epoch, seq), "round trip")
			}
		})
	}
}

// TestReplayRingConcurrent runs Add and Read together, for the race
// detector, and checks that every replay is a run of consecutive
// positions. The readers are running before the writer starts, each
// compares at least minChecks replays on every run, and the writer waits for
// a comparison every 100 adds, so that some are made while it runs.
func TestReplayRingConcurrent(t *testing.T) {
	const size, adds = 64, 3000
	// Every reader compares at least minChecks answers, whether or not the
	// writer is still running by then: a run that compared nothing would
	// prove nothing.
	const readers, minChecks = 4, 200
	r := NewReplayRing(size, 0)
	var latest atomic.Uint64     // the newest position added
	start := make(chan struct{}) // the writer starts once every reader runs
	var total atomic.Int64       // comparisons by all readers
	deadline := time.Now().Add(10 * time.Second)
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		<-start
		for i := uint64(1); i <= adds; i++ {
			grpAdd(r, i)
			latest.Store(i)
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
				from := latest.Load() - min(latest.Load(), uint64((i*7+w)%(size-8)))
				next, bad := from+1, uint64(0)
				r.Read(from, func(s uint64, _ *Frame) bool {
					if s != next {
						bad = s
						return false
					}
					next++
					return true
				})
				if bad != 0 {
					errs <- "Read(" + strconv.FormatUint(from, 10) + ") gave " + strconv.FormatUint(bad, 10)
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
