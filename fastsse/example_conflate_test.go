package fastsse_test

import (
	"bufio"
	"fmt"
	"net"
	"net/http"
	"time"

	"github.com/lasse-go/lasse/fastsse"
	"github.com/valyala/fasthttp"
)

// ticker joins every stream to its group of prices; a client that asks
// for ?throttle=1 gets each symbol at most once per 200 ms, the latest.
type ticker struct {
	prices *fastsse.Group
	joined chan struct{}
}

func (h ticker) Init(args any, lastEventID string, req *fastsse.Request) fastsse.InitResult[struct{}] {
	if req.Query("throttle") != "" {
		_ = req.Conn().SetLimits(fastsse.Limits{KeyInterval: 200 * time.Millisecond})
	}
	_ = h.prices.Join(req.Conn())
	h.joined <- struct{}{}
	return fastsse.Open(struct{}{})
}

func (ticker) HandleNotify(msg any, s struct{}) fastsse.Result[struct{}] { return fastsse.NoSend(s) }
func (ticker) HandleInfo(msg any, s struct{}) fastsse.Result[struct{}]   { return fastsse.NoSend(s) }
func (ticker) HandleError(ev fastsse.Event, err error, s struct{}) struct{} {
	return s
}
func (ticker) Terminate(reason error, s struct{}) {}

// Keyed conflation: a group whose events carry a Key, and a throttled
// client that gets the latest price of each symbol once per interval, with
// a lasse-loss event telling it how many values it did not get.
func ExampleConflation() {
	h := ticker{
		prices: fastsse.NewGroup(&fastsse.GroupOptions{Conflation: fastsse.ConflateAlways}),
		joined: make(chan struct{}, 1),
	}
	ep, err := fastsse.New[struct{}](h, nil)
	if err != nil {
		panic(err)
	}
	ln, _ := net.Listen("tcp", "127.0.0.1:0")
	srv := &fasthttp.Server{Handler: ep.ServeFastHTTP}
	go srv.Serve(ln)     //nolint:errcheck
	defer srv.Shutdown() //nolint:errcheck

	resp, err := http.Get("http://" + ln.Addr().String() + "/prices?throttle=1")
	if err != nil {
		panic(err)
	}
	defer resp.Body.Close()
	<-h.joined
	lines := bufio.NewScanner(resp.Body)
	next := func() { // print the next event's fields
		for lines.Scan() && lines.Text() != "" {
			fmt.Println(lines.Text())
		}
		fmt.Println("--")
	}

	publish := func(sym, price string) {
		_, _ = h.prices.Publish(&fastsse.Event{Key: sym, Data: sym + " " + price})
	}
	publish("ACME", "9.99")
	next() // the first value goes out at once
	publish("ACME", "10.01")
	publish("ACME", "10.05")
	publish("INIT", "1.50")
	next() // the rest, once the interval has passed: the latest of each
	next()
	next()
	fmt.Println("conflated:", ep.Stats().Conflated)
	// Output:
	// data: ACME 9.99
	// --
	// data: ACME 10.05
	// --
	// data: INIT 1.50
	// --
	// event: lasse-loss
	// data: {"dropped":0,"conflated":1}
	// --
	// conflated: 1
}
