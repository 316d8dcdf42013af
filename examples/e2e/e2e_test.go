package e2e

import (
	"net/http"
	"reflect"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
)

// settle is how long a test waits after the expected events arrived, to
// see that nothing more (a duplicate) follows.
const settle = time.Second

// pageState describes the pages' state for failure messages.
const pageState = `JSON.stringify({
	state: document.getElementById('state') && document.getElementById('state').textContent,
	count: document.getElementById('count') && document.getElementById('count').textContent,
	log: document.getElementById('log') && document.getElementById('log').textContent,
	received: window.received,
})`

// streamOpen is true once the page's EventSource is open: the stream's Init
// has run, so the connection is in its group.
const streamOpen = `document.getElementById('state').textContent === 'open'`

// TestPingPongInBrowser: a click on Ping makes the page's stream get "pong".
func TestPingPongInBrowser(t *testing.T) {
	srv := startExample(t, "pingpong")
	b := newBrowser(t)
	b.navigate(t, srv.base+"/")
	b.waitFor(t, "the EventSource to open", streamOpen, pageState)

	b.do(t, "click #ping", chromedp.Click(chromedp.ID("ping")))
	b.waitFor(t, "pong after the click",
		`document.getElementById('count').textContent === '1' && document.getElementById('log').textContent.includes('pong')`,
		pageState)
	time.Sleep(settle / 2)
	if got := b.text(t, "count"); got != "1" {
		t.Errorf("pongs after one click: %s, want 1", got)
	}
	if got := b.text(t, "log"); got != "pong\n" {
		t.Errorf("log: %q, want %q", got, "pong\n")
	}
	srv.stop(t) // with the browser's stream still open
}

// item is one entry of the news page's window.received.
type item struct {
	Type string `json:"type"`
	ID   string `json:"id"`
	Data string `json:"data"`
}

// received reads the news page's window.received.
func received(t *testing.T, b *browser) []item {
	t.Helper()
	var got []item
	b.evalJSON(t, `JSON.stringify(window.received)`, &got)
	return got
}

// postNews publishes body on the news server and returns its id.
func postNews(t *testing.T, srv *example, body string) string {
	t.Helper()
	code, id := srv.post(t, "/news", body)
	if code != http.StatusOK || id == "" {
		t.Fatalf("POST /news: %d %q", code, id)
	}
	return id
}

// TestNewsLineBreaksInBrowser: CRLF and a lone CR in posted data reach the
// browser as LF, the way the WHATWG parser must deliver them, and UTF-8
// survives.
func TestNewsLineBreaksInBrowser(t *testing.T) {
	const (
		body = "crlf\r\nlone cr\rnon-ASCII: héllo ✓ 日本"
		want = "crlf\nlone cr\nnon-ASCII: héllo ✓ 日本"
	)
	srv := startExample(t, "news")
	b := newBrowser(t)
	b.navigate(t, srv.base+"/")
	b.waitFor(t, "the EventSource to open", streamOpen, pageState)

	id := postNews(t, srv, body)
	b.waitFor(t, "the posted item", `window.received.length >= 1`, pageState)
	time.Sleep(settle / 2)
	wantItems := []item{{Type: "message", ID: id, Data: want}}
	if got := received(t, b); !reflect.DeepEqual(got, wantItems) {
		t.Errorf("window.received:\n got %+q\nwant %+q", got, wantItems)
	}
	if got := b.text(t, "last"); got != id {
		t.Errorf("last id shown: %q, want %q", got, id)
	}
	srv.stop(t)
}

// lastEventID matches the Last-Event-ID header line of a raw HTTP request.
var lastEventID = regexp.MustCompile(`(?im)^last-event-id:[ \t]*([^\r\n]*)\r?$`)

// TestNewsReconnectInBrowser: the server side of the stream is cut; while
// the browser cannot reach the server an item B is published; when it can
// again, the browser's own EventSource reconnects with Last-Event-ID and
// gets B exactly once, after A, with no gap.
func TestNewsReconnectInBrowser(t *testing.T) {
	srv := startExample(t, "news")
	px := newProxy(t, srv.addr)
	b := newBrowser(t)
	b.navigate(t, "http://"+px.addr()+"/")
	b.waitFor(t, "the EventSource to open", streamOpen, pageState)

	idA := postNews(t, srv, "item A")
	b.waitFor(t, "item A", `window.received.length >= 1`, pageState)

	px.cutAndHold()
	cut := time.Now()
	b.waitFor(t, "the page to see the stream end", `document.getElementById('state').textContent === 'reconnecting'`, pageState)
	// The EventSource tries again on its own (Chromium waits about 3 s).
	// The proxy holds that request: nothing reaches the server yet.
	var reconnects []request
	heldStreams := func() []request {
		var rs []request
		for _, r := range px.seen() {
			if r.held && strings.HasPrefix(r.head, "GET /news ") {
				rs = append(rs, r)
			}
		}
		return rs
	}
	if err := waitUntil(func() bool { reconnects = heldStreams(); return len(reconnects) > 0 }); err != nil {
		t.Fatalf("the browser did not try to reconnect to GET /news: %v\nconnections: %v\npage: %+q", err, px.seen(), received(t, b))
	}
	t.Logf("the browser reconnected %s after the cut", reconnects[0].at.Sub(cut).Round(time.Millisecond))
	for _, r := range reconnects {
		m := lastEventID.FindStringSubmatch(r.head)
		if m == nil || m[1] != idA {
			t.Errorf("the reconnect does not carry Last-Event-ID: %s:\n%s", idA, r.head)
		}
	}
	idB := postNews(t, srv, "item B") // published while the browser is away
	px.open()

	b.waitFor(t, "item B after the reconnect", `window.received.length >= 2`, pageState)
	b.waitFor(t, "the EventSource to open again", streamOpen, pageState)
	time.Sleep(settle)
	want := []item{{Type: "message", ID: idA, Data: "item A"}, {Type: "message", ID: idB, Data: "item B"}}
	if got := received(t, b); !reflect.DeepEqual(got, want) {
		t.Errorf("window.received:\n got %+q\nwant %+q (A once, then B once)\nconnections: %v", got, want, px.seen())
	}
	if rs := heldStreams(); len(rs) != 1 {
		t.Errorf("held reconnects to GET /news: %v, want one", rs)
	}
	t.Logf("cut at %s; connections through the proxy: %v", cut.Format("15:04:05.000"), px.seen())
	srv.stop(t)
}
