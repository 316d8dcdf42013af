package fastsse_test

import (
	"bufio"
	"fmt"
	"os"
	"time"

	"github.com/lasse-go/lasse/fastsse"
)

func ExampleAppendEvent() {
	buf := make([]byte, 0, 256) // reuse one buffer for every event
	buf, err := fastsse.AppendEvent(buf, &fastsse.Event{
		ID:    "42",
		Event: "price",
		Data:  `{"sym":"ACME","px":101.25}`,
		Retry: 3 * time.Second,
	})
	if err != nil {
		panic(err)
	}
	fmt.Printf("%q\n", buf)
	// Output:
	// "id: 42\nevent: price\ndata: {\"sym\":\"ACME\",\"px\":101.25}\nretry: 3000\n\n"
}

// Writing pending events into a bufio.Writer without allocating: encode into
// its free space, write, and flush once per batch.
func ExampleAppendEvent_bufio() {
	w := bufio.NewWriter(os.Stdout)
	for _, ev := range []*fastsse.Event{
		{ID: "1", Data: "first"},
		{ID: "2", Event: "note", Data: "second"},
	} {
		b, err := fastsse.AppendEvent(w.AvailableBuffer(), ev)
		if err != nil {
			continue // invalid event: nothing was appended
		}
		w.Write(b)
	}
	w.Flush()
	// Output:
	// id: 1
	// data: first
	//
	// id: 2
	// event: note
	// data: second
}

// Line breaks in data (LF, CRLF or CR) give one data line each; the client
// joins them back with LF.
func ExampleAppendEvent_multiLine() {
	buf, _ := fastsse.AppendEvent(nil, &fastsse.Event{Data: "line one\nline two\r\nline three\r"})
	fmt.Printf("%q\n", buf)
	// Output:
	// "data: line one\ndata: line two\ndata: line three\ndata: \n\n"
}

// An event must carry data. A non-nil, empty DataBytes sends an explicitly
// empty message, which the browser dispatches with data "".
func ExampleAppendEvent_emptyMessage() {
	_, err := fastsse.AppendEvent(nil, &fastsse.Event{ID: "7"})
	fmt.Println(err)

	buf, _ := fastsse.AppendEvent(nil, &fastsse.Event{ID: "7", DataBytes: []byte{}})
	fmt.Printf("%q\n", buf)
	// Output:
	// fastsse: event data required
	// "id: 7\ndata: \n\n"
}

// An id or event type that could inject fields is refused, and nothing is
// appended.
func ExampleAppendEvent_invalid() {
	buf := []byte("data: earlier\n\n")
	buf, err := fastsse.AppendEvent(buf, &fastsse.Event{ID: "1\nevent: admin", Data: "x"})
	fmt.Println(err)
	fmt.Printf("%q\n", buf)
	// Output:
	// fastsse: event id contains CR, LF or NUL
	// "data: earlier\n\n"
}

func ExampleAppendComment() {
	fmt.Printf("%q\n", fastsse.AppendComment(nil, ""))
	fmt.Printf("%q\n", fastsse.AppendComment(nil, "keep-alive\nfrom lasse"))
	// Output:
	// ": \n\n"
	// ": keep-alive\n: from lasse\n\n"
}

func ExampleNewFrame() {
	f, err := fastsse.NewFrame(&fastsse.Event{Event: "tick", Data: "1"})
	if err != nil {
		panic(err)
	}
	// The same immutable bytes can be written to any number of connections.
	fmt.Printf("%q %d\n", f.Bytes(), f.Len())
	// Output:
	// "event: tick\ndata: 1\n\n" 21
}
