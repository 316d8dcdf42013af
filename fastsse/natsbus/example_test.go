package natsbus_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/lasse-go/lasse/fastsse"
	"github.com/lasse-go/lasse/fastsse/natsbus"
	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
)

// reader resumes every client in the news group, on whichever instance it
// reconnects to.
type reader struct{ news *fastsse.Group }

func (h reader) Init(_ any, lastEventID string, req *fastsse.Request) fastsse.InitResult[struct{}] {
	// A gap (history no longer holds lastEventID) is told to the client
	// by Resume itself, with a lasse-gap event.
	if err := h.news.Resume(req.Conn(), lastEventID); err != nil && !errors.Is(err, fastsse.ErrReplayGap) {
		return fastsse.Reply(503, []byte(err.Error()), struct{}{})
	}
	return fastsse.Open(struct{}{})
}
func (reader) HandleNotify(any, struct{}) fastsse.Result[struct{}] { return fastsse.NoSend(struct{}{}) }
func (reader) HandleInfo(any, struct{}) fastsse.Result[struct{}]   { return fastsse.NoSend(struct{}{}) }
func (reader) HandleError(fastsse.Event, error, struct{}) struct{} { return struct{}{} }
func (reader) Terminate(error, struct{})                           {}

// Example joins a news group to a JetStream stream. Every instance runs
// the same code against the same NATS server (here one embedded in the
// process, as for a test or a demo; in production, nats.Connect to the
// cluster), and each gets every news.
func Example() {
	dir, _ := os.MkdirTemp("", "natsbus-example")
	defer os.RemoveAll(dir)
	s, err := server.NewServer(&server.Options{DontListen: true, JetStream: true, StoreDir: dir, NoLog: true, NoSigs: true})
	if err != nil {
		panic(err)
	}
	go s.Start()
	defer func() { s.Shutdown(); s.WaitForShutdown() }()
	if !s.ReadyForConnections(10 * time.Second) {
		panic("nats-server not ready")
	}
	nc, err := nats.Connect("", nats.InProcessServer(s))
	if err != nil {
		panic(err)
	}
	defer nc.Close()

	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	bus, err := natsbus.New(ctx, nc, natsbus.Config{Stream: "news", MaxMsgs: 10_000})
	if err != nil {
		panic(err)
	}
	news, err := fastsse.NewBusGroup(ctx, bus, &fastsse.GroupOptions{Replay: 1000})
	if err != nil {
		panic(err)
	}
	defer news.Close()
	ep, err := fastsse.New[struct{}](reader{news: news}, nil)
	if err != nil {
		panic(err)
	}
	_ = ep.ServeFastHTTP // mount it: fasthttp.Server{Handler: ep.ServeFastHTTP}

	for _, text := range []string{"first", "second"} {
		id, err := news.Publish(&fastsse.Event{Data: text})
		if err != nil {
			panic(err)
		}
		// The id is the stream's epoch and the message's stream sequence:
		// the same on every instance.
		fmt.Println(strings.TrimPrefix(id, bus.Epoch()))
	}
	// Output:
	// -1
	// -2
}
