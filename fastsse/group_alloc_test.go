//go:build !race

package fastsse

import (
	"runtime/debug"
	"testing"
	"time"
)

// TestGroupPublishAllocsFlat fails if Publish allocates per member:
// allocs/op with 1,000 members must equal allocs/op with 10. (The race
// detector makes allocations of its own, hence the build tag.)
//
// The members are Conns of a real Endpoint without a stream behind them
// (grpBareConn), and the measured function drains every member's queue
// after each Publish exactly as a stream's goroutine does (take the ring,
// give it back to the pool). So each Publish finds every queue empty and
// takes a ring from the pool for every member: the path of a fan-out whose
// members keep up. Real streams cannot be used here: AllocsPerRun counts
// the allocations of every goroutine in the process, so their writes and
// their clients' reads would be counted as Publish's.
//
// GC is off while measuring: a collection empties sync.Pools, and refilling
// the ring pool would be counted as per-member allocations that the steady
// state does not make.
func TestGroupPublishAllocsFlat(t *testing.T) {
	defer debug.SetGCPercent(debug.SetGCPercent(-1))
	perOp := map[string]float64{}
	for _, tt := range []struct {
		name string
		opts *GroupOptions
		ev   Event
	}{
		{"no replay", nil, Event{ID: "42", Event: "tick", Data: `{"price":9.99}`}},
		{"replay ring", &GroupOptions{Replay: 64}, Event{Event: "tick", Data: `{"price":9.99}`}},
		{"observer", &GroupOptions{Observer: nopObserver{}}, Event{ID: "42", Event: "tick", Data: `{"price":9.99}`}},
		{"keyed, conflate always", &GroupOptions{Conflation: ConflateAlways}, Event{Key: "ACME", Event: "tick", Data: `{"price":9.99}`}},
		{"keyed, conflate on backpressure", &GroupOptions{Conflation: ConflateBackpressure}, Event{Key: "ACME", Event: "tick", Data: `{"price":9.99}`}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			measure := func(members int) float64 {
				ep := grpEndpoint(t, &Options{Heartbeat: -1})
				g := NewGroup(tt.opts)
				conns := make([]*Conn, members)
				for i := range conns {
					conns[i] = grpBareConn(t, ep)
					if err := g.Join(conns[i]); err != nil {
						t.Fatal(err)
					}
				}
				publish := func() {
					if _, err := g.Publish(&tt.ev); err != nil {
						panic(err)
					}
					for _, c := range conns {
						if q, _, _, _ := c.take(); q != nil {
							ep.core.rings.put(q)
						}
					}
				}
				for range 10 { // fill the ring pool and its chain, and the replay ring's index
					publish()
				}
				return testing.AllocsPerRun(200, publish)
			}
			few, many := measure(10), measure(1000)
			t.Logf("allocs/op: %v with 10 members, %v with 1000", few, many)
			perOp[tt.name] = few
			if many != few {
				t.Fatalf("Publish: %v allocs/op with 1000 members, %v with 10: it allocates per member", many, few)
			}
			// The frames come from the group's arena: a block per many
			// events, which AllocsPerRun's average rounds to 0.
			if few != 0 {
				t.Fatalf("Publish: %v allocs/op, want 0 in the steady state", few)
			}
		})
	}
	if perOp["observer"] != perOp["no replay"] {
		t.Fatalf("Publish: %v allocs/op with an Observer, %v without", perOp["observer"], perOp["no replay"])
	}
}

// TestConflatingPublishAllocsFlat: Publish to members whose queues are
// never drained, with ConflateAlways and a few keys: after the first events
// every push replaces a pending frame in place. It allocates nothing, per
// member or per event.
func TestConflatingPublishAllocsFlat(t *testing.T) {
	defer debug.SetGCPercent(debug.SetGCPercent(-1))
	measure := func(members int) float64 {
		ep := grpEndpoint(t, &Options{Heartbeat: -1, Conflation: ConflateAlways, QueueSize: 16})
		var g Group
		for range members {
			if err := g.Join(grpBareConn(t, ep)); err != nil {
				t.Fatal(err)
			}
		}
		keys := []string{"ACME", "INIT", "TECH", "CORP"}
		i := 0
		publish := func() {
			ev := Event{Key: keys[i%len(keys)], Event: "tick", Data: `{"price":9.99}`}
			i++
			if _, err := g.Publish(&ev); err != nil {
				panic(err)
			}
		}
		for range 10 {
			publish()
		}
		n := testing.AllocsPerRun(400, publish)
		if st := ep.Stats(); st.Conflated == 0 || st.Dropped+st.SlowConsumers != 0 {
			t.Fatalf("not conflating in place: %+v", st)
		}
		return n
	}
	few, many := measure(10), measure(1000)
	t.Logf("allocs/op: %v with 10 members, %v with 1000", few, many)
	if few != 0 || many != 0 {
		t.Fatalf("conflating Publish: %v allocs/op with 10 members, %v with 1000; want 0", few, many)
	}
}

// nopObserver hears everything and does nothing.
type nopObserver struct{}

func (nopObserver) StreamOpened(StreamInfo)                      {}
func (nopObserver) StreamEnded(StreamInfo, error, time.Duration) {}
func (nopObserver) Overflowed(StreamInfo, OverflowPolicy)        {}
func (nopObserver) Replayed(StreamInfo, ReplayResult, int)       {}
func (nopObserver) Published(int, time.Duration)                 {}
