package fastsse

import (
	"strconv"
	"time"
)

// Conflation is what a connection's queue does with keyed frames (an Event
// with a Key, published with Group.Publish or sent as a Frame): a live feed
// of prices or scores needs the latest value of each key, not every one.
// Conflation never splits an event: a client gets whole events, and the
// last value it got of a key is the latest published before it was sent.
// A frame conflated away is counted in the loss signal (LossEvent).
type Conflation uint8

const (
	// ConflateDefault is the zero Conflation: in Options it is
	// ConflateOff; in GroupOptions it is the endpoint's (each member's).
	ConflateDefault Conflation = iota
	// ConflateOff queues every frame.
	ConflateOff
	// ConflateBackpressure conflates once a connection is behind: while
	// its queue is full, or its Limits hold its frames back, a keyed frame
	// replaces the pending frame of its key in place, keeping its position.
	// A client that keeps up gets every value.
	ConflateBackpressure
	// ConflateAlways keeps at most one pending frame per key: a keyed frame
	// always replaces the pending frame of its key in place. The queue then
	// holds at most one frame per key (and the unkeyed ones), within
	// Options.QueueSize: set it to at least the number of keys.
	ConflateAlways
)

// Limits caps what one connection is sent of published frames (Group.Publish,
// Conn.SendFrame); the events of callbacks, replays and heartbeats are not
// capped. What a cap holds back is conflated when keyed: a keyed frame waits
// in the queue, and a newer frame of its key replaces it. An unkeyed frame
// over the Events or Bytes cap is dropped, and counted in the loss signal.
// Nothing ever blocks the publisher. Set it for every connection with
// Options.Limits, or for one with Conn.SetLimits (a free and a paid tier).
// The zero Limits caps nothing.
type Limits struct {
	// KeyInterval, when positive, sends a connection its keyed frames at
	// most once per interval (Lightstreamer's max frequency): they go out
	// together, one batch per interval, always with the latest value of
	// each key when the interval ends. It implies ConflateAlways for keyed
	// frames. What is queued behind a waiting keyed frame waits with it:
	// the order of the queue is kept.
	KeyInterval time.Duration
	// Events, when positive, caps the frames written per second, with a
	// burst of one second's worth.
	Events int
	// Bytes, when positive, caps the bytes of frames written per second,
	// with a burst of one second's worth (a larger frame goes out once the
	// burst is whole).
	Bytes int
}

func (l *Limits) active() bool { return l.KeyInterval > 0 || l.Events > 0 || l.Bytes > 0 }

// LossEvent is the type of the event that tells a client something meant
// for it was lost: dropped (OverflowDropOldest, OverflowDropNewest, a Limits
// cap) or conflated away. It ends the first batch written after the loss,
// once per batch, and its data counts what was lost since the previous
// one, as JSON: {"dropped":2,"conflated":17}. It has no id. A client that
// gets one may resynchronise; Conn.Losses and Stats keep the totals.
const LossEvent = "lasse-loss"

// appendLoss appends the LossEvent for the counts.
func appendLoss(dst []byte, dropped, conflated int64) []byte {
	dst = append(dst, "event: "+LossEvent+"\ndata: {\"dropped\":"...)
	dst = strconv.AppendInt(dst, dropped, 10)
	dst = append(dst, ",\"conflated\":"...)
	dst = strconv.AppendInt(dst, conflated, 10)
	return append(dst, "}\n\n"...)
}

// pacer is a stream's Limits at work: owned by the stream's turn, it admits
// frames into batches and says when held ones may go.
type pacer struct {
	lim       Limits
	at        int64   // core clock of the last refill
	events    float64 // tokens of the Events cap
	bytes     float64 // tokens of the Bytes cap
	keyedAt   int64   // core clock of the last batch with keyed frames; 0: none
	keyed     bool    // the current batch holds keyed frames
	holdUntil int64   // core clock when a held frame may go; 0: none held
}

type admission uint8

const (
	admit admission = iota
	hold            // keyed, over a cap: back to the queue, the batch ends
	drop            // unkeyed, over a cap
)

// set takes new limits; the caps' buckets start full.
func (p *pacer) set(l Limits, now int64) {
	p.lim = l
	p.at = now
	p.events = float64(l.Events)
	p.bytes = float64(l.Bytes)
}

// admit decides for f at now.
func (p *pacer) admit(f *Frame, now int64) admission {
	keyed := f.key != ""
	if keyed && p.lim.KeyInterval > 0 && !p.keyed && p.keyedAt != 0 {
		if due := p.keyedAt + int64(p.lim.KeyInterval); now < due {
			p.holdUntil = due
			return hold
		}
	}
	p.refill(now)
	if p.lim.Events > 0 && p.events < 1 {
		return p.over(keyed, now+int64((1-p.events)*float64(time.Second)/float64(p.lim.Events)))
	}
	if p.lim.Bytes > 0 {
		need := float64(min(len(f.b), p.lim.Bytes))
		if p.bytes < need {
			return p.over(keyed, now+int64((need-p.bytes)*float64(time.Second)/float64(p.lim.Bytes)))
		}
		p.bytes -= float64(len(f.b))
	}
	if p.lim.Events > 0 {
		p.events--
	}
	if keyed {
		p.keyed = true
	}
	return admit
}

func (p *pacer) over(keyed bool, due int64) admission {
	if !keyed {
		return drop
	}
	p.holdUntil = due
	return hold
}

func (p *pacer) refill(now int64) {
	el := float64(now-p.at) / float64(time.Second)
	p.at = now
	if p.lim.Events > 0 {
		p.events = min(float64(p.lim.Events), p.events+el*float64(p.lim.Events))
	}
	if p.lim.Bytes > 0 {
		p.bytes = min(float64(p.lim.Bytes), p.bytes+el*float64(p.lim.Bytes))
	}
}

// written ends a batch that was written at now.
func (p *pacer) written(now int64) {
	if p.keyed {
		p.keyedAt = now
		p.keyed = false
	}
}
