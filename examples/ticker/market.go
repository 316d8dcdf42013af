package main

import (
	"context"
	"encoding/json"
	"math/rand/v2"
	"strconv"
	"sync"
	"time"

	"github.com/lasse-go/lasse/fastsse"
)

// maxSymbols is how many distinct three-letter symbols there are.
const maxSymbols = 26 * 26 * 26

// symbolName is the i-th symbol: three letters, spread over the alphabet
// (7919 is prime to 26³, so i ↦ i·7919 mod 26³ is one-to-one).
func symbolName(i int) string {
	n := i * 7919 % maxSymbols
	return string([]byte{byte('A' + n/676), byte('A' + n/26%26), byte('A' + n%26)})
}

// quote is one symbol's value: its price in cents and when it was set
// (Unix ns), the time its event carries.
type quote struct {
	cents int64
	at    int64
}

// market holds the symbols and their last values. The publisher changes a
// value and then publishes it; a stream takes its snapshot after joining
// the group. So whatever a client gets, the snapshot first and the
// published frames after it, ends on the last value of every symbol.
type market struct {
	group *fastsse.Group
	names []string
	// startAfter is how many streams must be open before the publisher
	// starts (-start-after); 0: at once.
	startAfter int
	rng        *rand.Rand // the publisher's only

	mu      sync.Mutex
	quotes  []quote
	updates int64 // published so far
	stopped bool  // the publisher has stopped
}

func newMarket(g *fastsse.Group, symbols int, seed uint64) *market {
	m := &market{
		group:  g,
		names:  make([]string, symbols),
		rng:    rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15)),
		quotes: make([]quote, symbols),
	}
	now := time.Now().UnixNano()
	for i := range m.names {
		m.names[i] = symbolName(i)
		m.quotes[i] = quote{cents: 1000 + m.rng.Int64N(49000), at: now}
	}
	return m
}

// appendTick appends an event's data: the value's time in Unix ns (first,
// as sse-bench reads latency), the symbol and the price, space-separated:
// "1764597600123456789 QXZ 123.45".
func appendTick(dst []byte, name string, q quote) []byte {
	dst = strconv.AppendInt(dst, q.at, 10)
	dst = append(dst, ' ')
	dst = append(dst, name...)
	dst = append(dst, ' ')
	return appendPrice(dst, q.cents)
}

// appendPrice appends cents as a decimal price with two places.
func appendPrice(dst []byte, cents int64) []byte {
	dst = strconv.AppendInt(dst, cents/100, 10)
	dst = append(dst, '.', byte('0'+cents/10%10), byte('0'+cents%10))
	return dst
}

// step moves symbol i's price by a random walk step (±1–10 cents, never
// under 1.00) and returns its new value.
func (m *market) step(i int, now int64) quote {
	d := 1 + m.rng.Int64N(10)
	if m.rng.IntN(2) == 0 {
		d = -d
	}
	m.mu.Lock()
	q := m.quotes[i]
	q.cents = max(q.cents+d, 100)
	q.at = now
	m.quotes[i] = q
	m.updates++
	m.mu.Unlock()
	return q
}

// publishTick is how often the publisher wakes; each wake publishes the
// updates due since the last, up to maxCatchUp's worth: a wake later than
// that skips the rest (a busy machine wakes it late, often by 10–20 ms).
const (
	publishTick = 10 * time.Millisecond
	maxCatchUp  = 100 * time.Millisecond
)

// run publishes rate updates per second in all, the symbols in turn (so
// that each symbol changes every symbols/rate seconds), each keyed by its
// symbol, until ctx is done or limit updates were published (limit 0: no
// limit). Updates a wake more than maxCatchUp late missed are skipped,
// not published in a burst.
func (m *market) run(ctx context.Context, rate float64, limit int64) {
	defer func() {
		m.mu.Lock()
		m.stopped = true
		m.mu.Unlock()
	}()
	if rate <= 0 {
		return
	}
	for m.group.Len() < m.startAfter {
		select {
		case <-ctx.Done():
			return
		case <-time.After(10 * time.Millisecond):
		}
	}
	t := time.NewTicker(publishTick)
	defer t.Stop()
	var (
		buf   []byte
		next  int
		sent  int64
		start = time.Now()
		done  int64 // updates published or skipped so far
		burst = int64(rate*maxCatchUp.Seconds()) + 1
	)
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		n := int64(time.Since(start).Seconds()*rate) - done
		if n > burst {
			done += n - burst // skipped
			n = burst
		}
		done += n
		for ; n > 0; n-- {
			if limit > 0 && sent == limit {
				return
			}
			q := m.step(next, time.Now().UnixNano())
			buf = appendTick(buf[:0], m.names[next], q)
			// Publish encodes at once: buf is free again when it returns.
			if _, err := m.group.Publish(&fastsse.Event{Key: m.names[next], DataBytes: buf}); err != nil {
				return // the group is closed
			}
			sent++
			next = (next + 1) % len(m.names)
		}
	}
}

// snapshot returns one event per symbol with its last value, in symbol
// order.
func (m *market) snapshot() []fastsse.Event {
	evs := make([]fastsse.Event, len(m.names))
	m.mu.Lock()
	defer m.mu.Unlock()
	for i, q := range m.quotes {
		evs[i] = fastsse.Event{Key: m.names[i], DataBytes: appendTick(nil, m.names[i], q)}
	}
	return evs
}

// lastQuote is one symbol in GET /last.
type lastQuote struct {
	Price string `json:"price"` // as the events carry it: "123.45"
	T     int64  `json:"t"`     // the value's time, Unix ns, as in its event
}

// last is GET /last: the publisher's last value of every symbol.
type last struct {
	Updates int64                `json:"updates"` // published so far
	Stopped bool                 `json:"stopped"` // no more will come
	Symbols map[string]lastQuote `json:"symbols"`
}

// lastJSON encodes GET /last.
func (m *market) lastJSON() []byte {
	l := last{Symbols: make(map[string]lastQuote, len(m.names))}
	m.mu.Lock()
	l.Updates, l.Stopped = m.updates, m.stopped
	for i, q := range m.quotes {
		l.Symbols[m.names[i]] = lastQuote{Price: string(appendPrice(nil, q.cents)), T: q.at}
	}
	m.mu.Unlock()
	b, _ := json.Marshal(l) // strings and numbers only: it cannot fail
	return b
}
