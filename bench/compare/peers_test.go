package compare

import (
	"bytes"
	"fmt"

	happ "github.com/cloudwego/hertz/pkg/app"
	hertzsse "github.com/cloudwego/hertz/pkg/protocol/sse"
	ginsse "github.com/gin-contrib/sse"
	"github.com/lasse-go/lasse/fastsse"
	ldes "github.com/launchdarkly/eventsource"
	tmsse "github.com/tmaxmax/go-sse"

	"github.com/lasse-go/lasse/internal/benchdata"
)

// The benchmark payloads, shared with fastsse's benchmarks.
var (
	benchSmallData = benchdata.SmallData
	benchJSON1K    = benchdata.JSON1K
	benchLines10   = benchdata.Lines10
)

// benchEvent is one benchmark event: id and type are empty for the larger
// payloads.
type benchEvent struct {
	name, id, typ, data string
}

var benchEvents = []benchEvent{
	{"small", "1234567", "update", benchSmallData},
	{"json1k", "", "", benchJSON1K},
	{"lines10", "", "", benchLines10},
}

// A peer is one encoder, used the way its documentation shows, through a
// function that returns the wire bytes of one event. The benchmarks do the
// same work without the indirection and with the buffers reused.
type peer struct {
	name string // benchmark and table name
	mod  string // module and version
	// encode returns the wire bytes of one event, or an error when the
	// library refused it (a panic counts as refused).
	encode func(id, typ, data string) ([]byte, error)
}

var peers = []peer{
	{"lasse", "github.com/lasse-go/lasse (this repo)", encodeLasse},
	{"tmaxmax", "github.com/tmaxmax/go-sse v0.12.0", encodeTmaxmax},
	{"gin", "github.com/gin-contrib/sse v1.1.2", encodeGin},
	{"hertz", "github.com/cloudwego/hertz v0.10.4 pkg/protocol/sse", encodeHertz},
	{"launchdarkly", "github.com/launchdarkly/eventsource v1.11.0", encodeLaunchDarkly},
}

func encodeLasse(id, typ, data string) ([]byte, error) {
	return fastsse.AppendEvent(nil, &fastsse.Event{ID: id, Event: typ, Data: data})
}

// newTmaxmaxMessage builds a go-sse Message: NewID and NewType validate, and
// AppendData splits the data into lines.
func newTmaxmaxMessage(id, typ, data string) (*tmsse.Message, error) {
	m := &tmsse.Message{}
	if id != "" {
		v, err := tmsse.NewID(id)
		if err != nil {
			return nil, err
		}
		m.ID = v
	}
	if typ != "" {
		v, err := tmsse.NewType(typ)
		if err != nil {
			return nil, err
		}
		m.Type = v
	}
	m.AppendData(data)
	return m, nil
}

func encodeTmaxmax(id, typ, data string) ([]byte, error) {
	m, err := newTmaxmaxMessage(id, typ, data)
	if err != nil {
		return nil, err
	}
	var buf bytes.Buffer
	_, err = m.WriteTo(&buf)
	return buf.Bytes(), err
}

// gin's Context.SSEvent renders sse.Event{Event, Data} with sse.Encode.
func encodeGin(id, typ, data string) ([]byte, error) {
	var buf bytes.Buffer
	err := ginsse.Encode(&buf, ginsse.Event{Id: id, Event: typ, Data: data})
	return buf.Bytes(), err
}

// hertzCapture stands in for the response's chunked body writer: it keeps
// what hertz's sse.Writer writes.
type hertzCapture struct{ b []byte }

func (c *hertzCapture) Write(p []byte) (int, error) { c.b = append(c.b, p...); return len(p), nil }
func (c *hertzCapture) Flush() error                { return nil }
func (c *hertzCapture) Finalize() error             { return nil }

// newHertzWriter returns hertz's sse.Writer for a request whose body goes to
// the returned capture.
func newHertzWriter() (*hertzsse.Writer, *hertzCapture) {
	c := happ.NewContext(0)
	capt := &hertzCapture{}
	c.Response.HijackWriter(capt)
	return hertzsse.NewWriter(c), capt
}

func encodeHertz(id, typ, data string) ([]byte, error) {
	w, capt := newHertzWriter()
	err := w.WriteEvent(id, typ, []byte(data))
	return capt.b, err
}

// ldEvent implements eventsource.Event.
type ldEvent struct{ id, typ, data string }

func (e *ldEvent) Id() string    { return e.id }
func (e *ldEvent) Event() string { return e.typ }
func (e *ldEvent) Data() string  { return e.data }

func encodeLaunchDarkly(id, typ, data string) ([]byte, error) {
	var buf bytes.Buffer
	err := ldes.NewEncoder(&buf, false).Encode(&ldEvent{id, typ, data})
	return buf.Bytes(), err
}

// safeEncode calls p.encode, turning a panic into an error.
func safeEncode(p peer, id, typ, data string) (out []byte, err error) {
	defer func() {
		if r := recover(); r != nil {
			out, err = nil, fmt.Errorf("panic: %v", r)
		}
	}()
	return p.encode(id, typ, data)
}
