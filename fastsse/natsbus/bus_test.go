package natsbus

import (
	"context"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/lasse-go/lasse/fastsse"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func ctxWait(tb testing.TB) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), wait)
	tb.Cleanup(cancel)
	return ctx
}

// TestFanOut: three instances on one stream, clients spread over them, on
// both transports. Publishes on any instance reach every client, in one
// order, with the same ids everywhere; and the stream has one consumer per
// instance, not one per client.
func TestFanOut(t *testing.T) {
	ns := startNATS(t)
	cfg := Config{Stream: "NEWS", Subject: "news"}
	var insts []*instance
	for i := range 3 {
		tr := fastsse.TransportStream
		if i == 1 {
			tr = fastsse.TransportDense
		}
		insts = append(insts, startInstance(t, ns, cfg, &fastsse.GroupOptions{Replay: 100}, &fastsse.Options{Heartbeat: -1, Transport: tr}))
	}
	epoch := insts[0].bus.Epoch()
	for _, in := range insts {
		assert.Equal(t, epoch, in.bus.Epoch(), "one stream, one epoch")
	}
	var clients []*sseClient
	for i := range 12 {
		clients = append(clients, get(t, insts[i%3].addr, ""))
	}
	for _, in := range insts {
		require.Eventually(t, func() bool { return in.group.Len() == 4 }, wait, 5*time.Millisecond)
	}
	const n = 30
	var want []string
	for i := range n {
		id, err := insts[i%3].group.Publish(&fastsse.Event{Data: "news " + strconv.Itoa(i)})
		require.NoError(t, err)
		want = append(want, id)
	}
	assert.Equal(t, epoch+"-1", want[0])
	assert.Equal(t, epoch+"-"+strconv.Itoa(n), want[n-1], "consecutive stream sequences")
	for i, c := range clients {
		assert.Equal(t, want, c.ids(t, n), "client %d", i)
	}
	info, err := insts[0].bus.stream.Info(ctxWait(t))
	require.NoError(t, err)
	assert.Equal(t, 3, info.State.Consumers, "one ordered consumer per instance")
}

// TestPublishRetryDedupe: a publisher's retry with the same message id is
// stored and delivered once.
func TestPublishRetryDedupe(t *testing.T) {
	ns := startNATS(t)
	in := startInstance(t, ns, Config{Stream: "DEDUPE"}, nil, &fastsse.Options{Heartbeat: -1})
	c := get(t, in.addr, "")
	require.Eventually(t, func() bool { return in.group.Len() == 1 }, wait, 5*time.Millisecond)
	payload := []byte("data: once\n\n")
	s1, err := in.bus.Publish(ctxWait(t), "m-1", payload)
	require.NoError(t, err)
	s2, err := in.bus.Publish(ctxWait(t), "m-1", payload)
	require.NoError(t, err)
	assert.Equal(t, s1, s2, "the retry is the first one")
	s3, err := in.bus.Publish(ctxWait(t), "m-2", []byte("data: next\n\n"))
	require.NoError(t, err)
	assert.Equal(t, s1+1, s3)
	ev, err := c.next()
	require.NoError(t, err)
	assert.Equal(t, "once", ev.Data)
	ev, err = c.next()
	require.NoError(t, err)
	assert.Equal(t, "next", ev.Data, "no duplicate between")
}

// TestResumeOnAnotherInstance: a client that read from one instance
// resumes on another from the id it had, with nothing lost and nothing
// repeated; an id of another stream is a gap, told with lasse-gap.
func TestResumeOnAnotherInstance(t *testing.T) {
	ns := startNATS(t)
	a := startInstance(t, ns, Config{Stream: "R"}, &fastsse.GroupOptions{Replay: 100}, &fastsse.Options{Heartbeat: -1})
	b := startInstance(t, ns, Config{Stream: "R"}, &fastsse.GroupOptions{Replay: 100}, &fastsse.Options{Heartbeat: -1, Transport: fastsse.TransportDense})
	var ids []string
	for i := range 10 {
		id, err := a.group.Publish(&fastsse.Event{Data: strconv.Itoa(i)})
		require.NoError(t, err)
		ids = append(ids, id)
	}
	c := get(t, b.addr, ids[3])
	assert.Equal(t, ids[4:], c.ids(t, 6))
	id, err := a.group.Publish(&fastsse.Event{Data: "live"})
	require.NoError(t, err)
	assert.Equal(t, []string{id}, c.ids(t, 1))

	other := get(t, b.addr, "zzzzzzzz-3")
	ev, err := other.next()
	require.NoError(t, err)
	assert.Equal(t, fastsse.GapEvent, ev.Type)
	assert.Equal(t, "zzzzzzzz-3", ev.Data)
	assert.Equal(t, id, ev.ID)
}

// TestNewRefuses: bad configuration gets a clear error.
func TestNewRefuses(t *testing.T) {
	ns := startNATS(t)
	nc := ns.connect(t)
	_, err := New(ctxWait(t), nil, Config{Stream: "X"})
	assert.ErrorContains(t, err, "nil connection")
	_, err = New(ctxWait(t), nc, Config{})
	assert.ErrorContains(t, err, "Stream is required")
	_, err = New(ctxWait(t), nc, Config{Stream: "S", Subject: "a"})
	require.NoError(t, err)
	_, err = New(ctxWait(t), nc, Config{Stream: "S", Subject: "b"})
	require.Error(t, err, "a stream of another subject")
	assert.True(t, strings.Contains(err.Error(), "S"), err.Error())
}
