package sseclient_test

import (
	"context"
	"fmt"
	"net"
	"time"

	"github.com/lasse-go/lasse/fastsse"
	"github.com/lasse-go/lasse/fastsse/sseclient"
	"github.com/valyala/fasthttp"
)

// A news feed with replay, read from after the id an earlier run kept.
func Example() {
	news := fastsse.NewGroup(&fastsse.GroupOptions{Replay: 100})
	var ids []string // EPOCH-1, EPOCH-2, EPOCH-3: the group numbers its events
	for _, s := range []string{"one", "two", "three"} {
		id, _ := news.Publish(&fastsse.Event{Data: s})
		ids = append(ids, id)
	}
	ep, _ := fastsse.New(&feed{group: news}, nil)
	ln, _ := net.Listen("tcp", "127.0.0.1:0")
	srv := &fasthttp.Server{Handler: ep.ServeFastHTTP}
	go func() { _ = srv.Serve(ln) }()
	defer srv.Shutdown()

	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	s := sseclient.Connect(ctx, "http://"+ln.Addr().String()+"/news", &sseclient.Options{LastEventID: ids[0]})
	for ev, err := range s.Events() {
		if err != nil {
			fmt.Println("stopped:", err)
			return
		}
		fmt.Printf("%s: %s\n", ev.Type, ev.Data)
		if string(ev.ID) == ids[2] {
			break
		}
	}
	// Output:
	// message: two
	// message: three
}
