package fastsse_test

import (
	"bufio"
	"context"
	"fmt"
	"net"
	"net/http"

	"github.com/lasse-go/lasse/fastsse"
	"github.com/valyala/fasthttp"
)

// counter is a lasse handler whose state counts the events it sent.
type counter struct {
	conns chan *fastsse.Conn
}

func (h counter) Init(args any, lastEventID string, req *fastsse.Request) fastsse.InitResult[int] {
	h.conns <- req.Conn() // keep the Pid to notify it later
	return fastsse.Open(0, fastsse.Event{Event: "hello", Data: "resuming after " + lastEventID})
}

func (counter) HandleNotify(msg any, n int) fastsse.Result[int] {
	if msg == "bye" {
		return fastsse.Stop(n)
	}
	return fastsse.Send(fastsse.Event{ID: fmt.Sprint(n + 1), Data: fmt.Sprint(msg)}, n+1)
}

func (counter) HandleInfo(msg any, n int) fastsse.Result[int] { return fastsse.NoSend(n) }

func (counter) HandleError(ev fastsse.Event, err error, n int) int { return n }

func (counter) Terminate(reason error, n int) {}

// A whole round trip: a fasthttp server with one endpoint, a client that
// resumes from id 7, two notifications and a stop.
func ExampleNew() {
	h := counter{conns: make(chan *fastsse.Conn, 1)}
	ep, err := fastsse.New[int](h, nil)
	if err != nil {
		panic(err)
	}
	ln, _ := net.Listen("tcp", "127.0.0.1:0")
	srv := &fasthttp.Server{Handler: ep.ServeFastHTTP}
	go srv.Serve(ln)     //nolint:errcheck
	defer srv.Shutdown() //nolint:errcheck

	req, _ := http.NewRequest("GET", "http://"+ln.Addr().String()+"/events", nil)
	req.Header.Set("Last-Event-ID", "7")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		panic(err)
	}
	defer resp.Body.Close()
	fmt.Println(resp.Header.Get("Content-Type"))

	conn := <-h.conns
	conn.Notify("line one\nline two")
	conn.Notify("bye")
	body := bufio.NewScanner(resp.Body)
	for body.Scan() {
		fmt.Printf("%q\n", body.Text())
	}
	<-conn.Done() // closed once Terminate has returned
	fmt.Println(conn.Err())
	fmt.Println(conn.Notify("too late") == fastsse.ErrClosed)

	// Output:
	// text/event-stream
	// "event: hello"
	// "data: resuming after 7"
	// ""
	// "id: 1"
	// "data: line one"
	// "data: line two"
	// ""
	// fastsse: stream stopped
	// true
}

// The same endpoint served from net/http: routed by a ServeMux, whose
// wildcards Init reads with Request.Param.
func ExampleEndpoint_HTTPHandler() {
	h := counter{conns: make(chan *fastsse.Conn, 1)}
	ep, err := fastsse.New[int](h, nil)
	if err != nil {
		panic(err)
	}
	mux := http.NewServeMux()
	mux.Handle("GET /events/{topic}", ep.HTTPHandler())
	ln, _ := net.Listen("tcp", "127.0.0.1:0")
	srv := &http.Server{Handler: mux}
	go srv.Serve(ln) //nolint:errcheck
	defer func() {
		// net/http's Shutdown waits for streams and ends none: drain first.
		ep.Drain(context.Background(), 0)  //nolint:errcheck
		srv.Shutdown(context.Background()) //nolint:errcheck
	}()

	resp, err := http.Get("http://" + ln.Addr().String() + "/events/news")
	if err != nil {
		panic(err)
	}
	defer resp.Body.Close()
	conn := <-h.conns
	conn.Notify("hi")
	conn.Notify("bye")
	body := bufio.NewScanner(resp.Body)
	for body.Scan() {
		fmt.Printf("%q\n", body.Text())
	}

	// Output:
	// "event: hello"
	// "data: resuming after "
	// ""
	// "id: 1"
	// "data: hi"
	// ""
}
