package fastsse

import (
	"errors"
	"time"
)

// Observer hears what an endpoint's streams and a group's publishes do, for
// metrics and traces: set it in Options.Observer (streams, replays) and in
// GroupOptions.Observer (publishes). The collector in package
// github.com/lasse-go/lasse/fastsse/promsse is one.
//
// Its methods are called synchronously, on the goroutine where the thing
// happened (a stream's turn, the goroutine that called Notify or Publish,
// Init's), and concurrently for different streams: they must be safe for
// concurrent use, return quickly and never block, and must not call back
// into the Conn or Group that they hear of. fastsse allocates nothing to
// call them; a nil Observer costs one comparison.
type Observer interface {
	// StreamOpened: Init opened the stream.
	StreamOpened(s StreamInfo)
	// StreamEnded: an opened stream ended, after Terminate returned.
	// ReasonClass(reason) sorts the reason into a few classes.
	StreamEnded(s StreamInfo, reason error, lifetime time.Duration)
	// Overflowed: a message found the stream's queue full and policy
	// applied (OverflowDropOldest, OverflowDropNewest: one message
	// dropped; OverflowClose: the stream ends as a slow consumer), or a
	// write stalled past StallTimeout (OverflowClose).
	Overflowed(s StreamInfo, policy OverflowPolicy)
	// Replayed: Group.Resume answered a stream's Last-Event-ID, queueing
	// events for it.
	Replayed(s StreamInfo, result ReplayResult, events int)
	// Published: Group.Publish queued one event for members streams; took
	// is the time it held the group.
	Published(members int, took time.Duration)
}

// BusObserver is an Observer that also hears of a bus group's deliveries
// (NewBusGroup): set it as GroupOptions.Observer. Its methods are called on
// the bus subscription's goroutine, one at a time, and follow Observer's
// rules otherwise.
type BusObserver interface {
	Observer
	// BusDelivered: an event published on the bus (here or by another
	// instance) reached this instance lag after it was published, by the
	// publishing machine's clock.
	BusDelivered(lag time.Duration)
	// BusGap: the bus lost events (to its retention) before this instance
	// had them; the members are told with a GapEvent.
	BusGap()
}

// StreamInfo names a stream to an Observer.
type StreamInfo struct {
	ID        uint64 // the stream's number within its endpoint, from 1
	Transport string // "stream", "dense" or "http"
	Route     string // Options.Route
}

// ReplayResult is what Group.Resume made of a Last-Event-ID.
type ReplayResult uint8

const (
	// ReplayNone: no Last-Event-ID; the stream joined the live events.
	ReplayNone ReplayResult = iota
	// ReplayHit: the id was found; what followed it was replayed.
	ReplayHit
	// ReplayGap: the id was not found (ErrReplayGap); nothing was replayed.
	ReplayGap
)

var replayNames = [...]string{ReplayNone: "none", ReplayHit: "hit", ReplayGap: "gap"}

// String returns "none", "hit" or "gap".
func (r ReplayResult) String() string {
	if int(r) < len(replayNames) {
		return replayNames[r]
	}
	return "unknown"
}

// endClasses are the classes of ReasonClass, in the order of Stats.Ends.
var endClasses = [...]struct {
	name string
	err  error
}{
	{"stopped", ErrStopped},
	{"refused", ErrRefused},
	{"client_gone", ErrClientGone},
	{"write_failed", ErrWriteFailed},
	{"shutdown", ErrShutdown},
	{"lifetime", ErrLifetime},
	{"slow_consumer", ErrSlowConsumer},
	{"panic", nil},
}

// ReasonClass sorts the reason a stream ended (Terminate's) into one of a
// few classes, for a bounded metric label: "stopped", "refused",
// "client_gone", "write_failed", "shutdown", "lifetime", "slow_consumer" or
// "panic" (a *PanicError, or any other error).
func ReasonClass(reason error) string { return endClasses[endClass(reason)].name }

func endClass(reason error) int {
	for i, c := range endClasses {
		if c.err != nil && errors.Is(reason, c.err) {
			return i
		}
	}
	return len(endClasses) - 1
}
