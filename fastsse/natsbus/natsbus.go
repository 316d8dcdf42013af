package natsbus

import (
	"context"
	"encoding/base32"
	"errors"
	"fmt"
	"hash/fnv"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/lasse-go/lasse/fastsse"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// Config names a Bus's JetStream stream and bounds its history.
type Config struct {
	// Stream is the JetStream stream's name. Required. New creates the
	// stream if it does not exist; an existing one must carry Subject and
	// nothing else.
	Stream string
	// Subject is the group's subject. Default: Stream.
	Subject string
	// MaxMsgs bounds the history in messages (MaxMsgsPerSubject). Default
	// 100,000. Resume reports a gap for a client that missed more.
	MaxMsgs int64
	// MaxAge bounds the history in time. Default 0: no bound.
	MaxAge time.Duration
	// MaxBytes bounds the history in bytes. Default 1 GiB.
	MaxBytes int64
	// Storage is the stream's storage. Default jetstream.FileStorage.
	Storage jetstream.StorageType
	// Replicas is the stream's replica count in a NATS cluster. Default 1.
	Replicas int
	// Duplicates is the window within which a publisher's retry (same
	// Nats-Msg-Id) is stored once. Default 2 minutes.
	Duplicates time.Duration
}

// Bus is a fastsse.Bus on one JetStream stream. It is safe for concurrent
// use.
type Bus struct {
	nc      *nats.Conn
	js      jetstream.JetStream
	stream  jetstream.Stream
	subject string
	epoch   string

	stats struct {
		resets, gaps, retries, faults, reads atomic.Int64
	}
}

var _ fastsse.Bus = (*Bus)(nil)

// New returns a Bus on cfg.Stream over nc, creating the stream if it does
// not exist (an existing stream keeps its own limits). It waits for
// JetStream no longer than ctx allows.
func New(ctx context.Context, nc *nats.Conn, cfg Config) (*Bus, error) {
	if nc == nil {
		return nil, errors.New("natsbus: nil connection")
	}
	if cfg.Stream == "" {
		return nil, errors.New("natsbus: Config.Stream is required")
	}
	if cfg.Subject == "" {
		cfg.Subject = cfg.Stream
	}
	if cfg.MaxMsgs <= 0 {
		cfg.MaxMsgs = 100_000
	}
	if cfg.MaxBytes <= 0 {
		cfg.MaxBytes = 1 << 30
	}
	if cfg.Replicas <= 0 {
		cfg.Replicas = 1
	}
	if cfg.Duplicates <= 0 {
		cfg.Duplicates = 2 * time.Minute
	}
	js, err := jetstream.New(nc)
	if err != nil {
		return nil, fmt.Errorf("natsbus: %w", err)
	}
	s, err := js.Stream(ctx, cfg.Stream)
	if err == nil {
		info := s.CachedInfo()
		if len(info.Config.Subjects) != 1 || info.Config.Subjects[0] != cfg.Subject {
			return nil, fmt.Errorf("natsbus: stream %s carries %v: it must carry %s alone", cfg.Stream, info.Config.Subjects, cfg.Subject)
		}
		return &Bus{nc: nc, js: js, stream: s, subject: cfg.Subject, epoch: epochOf(cfg.Stream, info.Created)}, nil
	}
	if !errors.Is(err, jetstream.ErrStreamNotFound) {
		return nil, fmt.Errorf("natsbus: stream %s: %w", cfg.Stream, err)
	}
	s, err = js.CreateStream(ctx, jetstream.StreamConfig{
		Name:              cfg.Stream,
		Subjects:          []string{cfg.Subject},
		Storage:           cfg.Storage,
		Replicas:          cfg.Replicas,
		MaxMsgsPerSubject: cfg.MaxMsgs,
		MaxMsgs:           cfg.MaxMsgs,
		MaxAge:            cfg.MaxAge,
		MaxBytes:          cfg.MaxBytes,
		Duplicates:        cfg.Duplicates,
		Discard:           jetstream.DiscardOld,
	})
	if err != nil {
		return nil, fmt.Errorf("natsbus: stream %s: %w", cfg.Stream, err)
	}
	return &Bus{nc: nc, js: js, stream: s, subject: cfg.Subject, epoch: epochOf(cfg.Stream, s.CachedInfo().Created)}, nil
}

var epochEncoding = base32.NewEncoding("0123456789abcdefghijklmnopqrstuv").WithPadding(base32.NoPadding)

// epochOf names a stream's sequence: its name and creation time, hashed to
// 8 characters. Every instance computes the same; a recreated stream (whose
// sequence starts over) gets another.
func epochOf(name string, created time.Time) string {
	h := fnv.New64a()
	h.Write([]byte(name))
	h.Write([]byte(strconv.FormatInt(created.UnixNano(), 10)))
	sum := h.Sum(nil)
	return epochEncoding.EncodeToString(sum[:5])
}

// Epoch implements fastsse.Bus: the stream's identity.
func (b *Bus) Epoch() string { return b.epoch }

// Stats are a Bus's counters.
type Stats struct {
	// Resets counts the times the subscription's ordered consumer started
	// over (after a reconnect, a missed heartbeat, or a slow consumer's
	// dropped messages), reading from history what it had not delivered.
	Resets int64
	// Gaps counts the times the subscription found history dropped by
	// retention before it could deliver it.
	Gaps int64
	// Retries counts publishes sent again (no responder, timeout).
	Retries int64
	// Faults counts the subscription's errors (slow consumer among them).
	Faults int64
	// Reads counts history reads (Read calls, each up to a block of
	// fastsse's shared history reads).
	Reads int64
}

// Stats returns the counters.
func (b *Bus) Stats() Stats {
	return Stats{
		Resets:  b.stats.resets.Load(),
		Gaps:    b.stats.gaps.Load(),
		Retries: b.stats.retries.Load(),
		Faults:  b.stats.faults.Load(),
		Reads:   b.stats.reads.Load(),
	}
}

// retryWait is the pause between two tries of a publish.
const retryWait = 50 * time.Millisecond

// Publish implements fastsse.Bus. It retries, with the same Nats-Msg-Id,
// while NATS is unreachable or answers nothing, until ctx ends: the stream
// stores the message once.
func (b *Bus) Publish(ctx context.Context, msgID string, payload []byte) (uint64, error) {
	msg := &nats.Msg{Subject: b.subject, Data: payload}
	for {
		ack, err := b.js.PublishMsg(ctx, msg, jetstream.WithMsgID(msgID), jetstream.WithExpectStream(b.stream.CachedInfo().Config.Name))
		if err == nil {
			return ack.Sequence, nil
		}
		if !transient(err) || ctx.Err() != nil {
			return 0, fmt.Errorf("natsbus: publish: %w", err)
		}
		b.stats.retries.Add(1)
		t := time.NewTimer(retryWait)
		select {
		case <-ctx.Done():
			t.Stop()
			return 0, fmt.Errorf("natsbus: publish: %w (last error: %w)", ctx.Err(), err)
		case <-t.C:
		}
	}
}

// transient reports whether a publish may succeed if sent again: all but
// a closed connection, a payload over the server's limit, and the stream's
// refusals (a JetStream API error other than 503, unavailable).
func transient(err error) bool {
	var apiErr *jetstream.APIError
	if errors.As(err, &apiErr) {
		return apiErr.Code == 503
	}
	return !errors.Is(err, nats.ErrConnectionClosed) && !errors.Is(err, nats.ErrMaxPayload)
}

// Last implements fastsse.Bus.
func (b *Bus) Last(ctx context.Context) (uint64, error) {
	info, err := b.stream.Info(ctx)
	if err != nil {
		return 0, fmt.Errorf("natsbus: %w", err)
	}
	return info.State.LastSeq, nil
}

// Subscribe implements fastsse.Bus with one ordered consumer: one per
// group per instance, however many clients. nats.go's ordered consumer
// starts over by itself, from the last sequence it delivered, after a
// reconnect, a missed heartbeat or a slow consumer's dropped message; a
// jump in sequence (retention dropped what it had not delivered) is passed
// on as deliver(seq-1, nil).
func (b *Bus) Subscribe(after uint64, deliver func(seq uint64, payload []byte)) (func(), error) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	cons, err := b.stream.OrderedConsumer(ctx, jetstream.OrderedConsumerConfig{
		FilterSubjects: []string{b.subject},
		DeliverPolicy:  jetstream.DeliverByStartSequencePolicy,
		OptStartSeq:    after + 1,
	})
	if err != nil {
		return nil, fmt.Errorf("natsbus: subscribe: %w", err)
	}
	var mu sync.Mutex // deliver runs one at a time, and not after stop
	stopped := false
	last := after
	cc, err := cons.Consume(func(m jetstream.Msg) {
		meta, err := m.Metadata()
		if err != nil {
			return
		}
		seq := meta.Sequence.Stream
		mu.Lock()
		defer mu.Unlock()
		if stopped || seq <= last {
			return
		}
		if seq > last+1 {
			b.stats.gaps.Add(1)
			deliver(seq-1, nil)
		}
		last = seq
		deliver(seq, m.Data())
	}, jetstream.PullMaxMessages(pullBatch), jetstream.ConsumeErrHandler(func(_ jetstream.ConsumeContext, err error) {
		b.stats.faults.Add(1)
		if errors.Is(err, jetstream.ErrNoHeartbeat) || errors.Is(err, nats.ErrSlowConsumer) {
			b.stats.resets.Add(1)
		}
	}))
	if err != nil {
		return nil, fmt.Errorf("natsbus: subscribe: %w", err)
	}
	var once sync.Once
	return func() {
		once.Do(func() {
			cc.Stop()
			select {
			case <-cc.Closed():
			case <-time.After(10 * time.Second):
			}
			mu.Lock()
			stopped = true
			mu.Unlock()
		})
	}, nil
}

// pullBatch bounds what the subscription holds fetched but not delivered:
// an instance that falls behind lags in the stream, not in memory, and is
// never cut off (pull consumers are flow-controlled); should it lag past
// retention, the jump in sequence is a gap, counted in Stats.Gaps and
// told to the clients.
const pullBatch = 128

// holds reports whether the stream holds every message after after, and
// its last sequence.
func (b *Bus) holds(ctx context.Context, after uint64) (last uint64, held bool, err error) {
	info, err := b.stream.Info(ctx)
	if err != nil {
		return 0, false, fmt.Errorf("natsbus: %w", err)
	}
	st := info.State
	first := st.FirstSeq
	if st.Msgs == 0 {
		first = st.LastSeq + 1
	}
	return st.LastSeq, after+1 >= first && after <= st.LastSeq, nil
}

// readBatch is how many messages one history fetch asks for.
const readBatch = 256

// Read implements fastsse.Bus: the stream's first sequence says whether
// the history still holds everything after after (the stream carries the
// group's subject alone, so its sequences are the group's, consecutive);
// an ordered consumer from after+1 fetches the messages.
func (b *Bus) Read(ctx context.Context, after, to uint64, fn func(seq uint64, payload []byte) bool) (bool, error) {
	b.stats.reads.Add(1)
	last, held, err := b.holds(ctx, after)
	if err != nil || !held {
		return false, err
	}
	to = min(to, last)
	if after >= to {
		return true, nil
	}
	cons, err := b.stream.OrderedConsumer(ctx, jetstream.OrderedConsumerConfig{
		FilterSubjects: []string{b.subject},
		DeliverPolicy:  jetstream.DeliverByStartSequencePolicy,
		OptStartSeq:    after + 1,
		// The server forgets the read's consumer soon after: a storm of
		// reads leaves no crowd of consumers behind.
		InactiveThreshold: 5 * time.Second,
	})
	if err != nil {
		return false, fmt.Errorf("natsbus: read: %w", err)
	}
	next := after + 1
	for next <= to {
		wait := 5 * time.Second
		if d, ok := ctx.Deadline(); ok {
			wait = max(min(wait, time.Until(d)), time.Millisecond)
		}
		batch, err := cons.Fetch(int(min(to-next+1, readBatch)), jetstream.FetchMaxWait(wait))
		if err != nil {
			return false, fmt.Errorf("natsbus: read: %w", err)
		}
		got := 0
		for m := range batch.Messages() {
			got++
			meta, err := m.Metadata()
			if err != nil {
				continue
			}
			seq := meta.Sequence.Stream
			if seq < next {
				continue
			}
			if seq > next {
				return false, nil // retention dropped it meanwhile
			}
			next++
			if seq > to || !fn(seq, m.Data()) {
				return true, nil
			}
		}
		if err := batch.Error(); err != nil {
			return false, fmt.Errorf("natsbus: read: %w", err)
		}
		if got == 0 {
			return false, fmt.Errorf("natsbus: read: no message %d within %v", next, wait)
		}
	}
	return true, nil
}
