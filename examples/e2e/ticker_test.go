package e2e

import (
	"encoding/json"
	"fmt"
	"net/http"
	"sort"
	"strconv"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
)

// tickerLast is examples/ticker's GET /last.
type tickerLast struct {
	Updates int64 `json:"updates"`
	Stopped bool  `json:"stopped"`
	Symbols map[string]struct {
		Price string `json:"price"`
		T     int64  `json:"t"`
	} `json:"symbols"`
}

// getTickerLast reads GET /last.
func getTickerLast(t *testing.T, srv *example) tickerLast {
	t.Helper()
	client := &http.Client{Timeout: 5 * time.Second}
	defer client.CloseIdleConnections()
	resp, err := client.Get(srv.base + "/last")
	if err != nil {
		t.Fatalf("GET /last: %v", err)
	}
	defer resp.Body.Close()
	var l tickerLast
	if err := json.NewDecoder(resp.Body).Decode(&l); err != nil {
		t.Fatalf("GET /last: %v", err)
	}
	return l
}

// tickerPage is what examples/ticker's page holds: window.ticker.
type tickerPage struct {
	State  string `json:"state"`
	Events int    `json:"events"`
	Loss   struct {
		Events, Dropped, Conflated int
	} `json:"loss"`
	Values map[string]struct {
		Price string `json:"price"`
		T     string `json:"t"` // Unix ns as a string, as the event has it
	} `json:"values"`
}

const tickerState = `JSON.stringify({state: window.ticker.state, events: window.ticker.events, loss: window.ticker.loss,
	symbols: Object.keys(window.ticker.values).length})`

// newTab opens another tab in b's browser.
func (b *browser) newTab(t *testing.T) *browser {
	t.Helper()
	ctx, cancel := chromedp.NewContext(b.ctx)
	t.Cleanup(cancel)
	// The first Do opens the tab, and binds it to its context: it must not
	// carry a deadline.
	if err := chromedp.Do(ctx); err != nil {
		t.Fatalf("open a tab: %v", err)
	}
	return &browser{ctx: ctx, out: b.out}
}

// TestTickerConvergesInBrowser: two pages of examples/ticker, one live and
// one throttled to one update per symbol per second, watch 300 symbols at
// 1,000 updates a second for 4 s; once the publisher stops (-updates), both tables
// hold exactly /last's value of every symbol. The throttled page got far
// fewer events, and was told that the rest were conflated.
func TestTickerConvergesInBrowser(t *testing.T) {
	const symbols, updates = 300, 4000
	// The publisher starts once both pages are open, so that both see
	// the whole run, however long the browser takes to start.
	srv := startExample(t, "ticker", "-symbols", strconv.Itoa(symbols), "-rate", "1000",
		"-updates", strconv.Itoa(updates), "-start-after", "2", "-drain-spread", "0s")
	live := newBrowser(t)
	throttled := live.newTab(t)
	pages := []struct {
		name string
		b    *browser
		path string
	}{{"live", live, "/"}, {"throttled", throttled, "/?throttle=1s"}}
	for _, p := range pages {
		p.b.navigate(t, srv.base+p.path)
		p.b.waitFor(t, p.name+": the snapshot of every symbol",
			fmt.Sprintf(`window.ticker.state === 'open' && Object.keys(window.ticker.values).length === %d`, symbols), tickerState)
	}

	var last tickerLast
	deadline := time.Now().Add(waitLimit)
	for last = getTickerLast(t, srv); !last.Stopped; last = getTickerLast(t, srv) {
		if time.Now().After(deadline) {
			t.Fatalf("the publisher has not stopped after %s: %d updates", waitLimit, last.Updates)
		}
		time.Sleep(50 * time.Millisecond)
	}
	if last.Updates != updates || len(last.Symbols) != symbols {
		t.Fatalf("/last: %d updates, %d symbols; want %d, %d", last.Updates, len(last.Symbols), updates, symbols)
	}
	// The predicate compares in the page; the comparison below, in Go,
	// says what differs when it does not.
	want := map[string][2]string{}
	for sym, q := range last.Symbols {
		want[sym] = [2]string{q.Price, strconv.FormatInt(q.T, 10)}
	}
	wantJS, _ := json.Marshal(want)
	converged := fmt.Sprintf(`(() => { const want = %s; const have = window.ticker.values;
		if (Object.keys(have).length !== Object.keys(want).length) return false;
		for (const s in want) { const v = have[s]; if (!v || v.price !== want[s][0] || v.t !== want[s][1]) return false; }
		return true; })()`, wantJS)

	got := map[string]tickerPage{}
	for _, p := range pages {
		// Throttled, a symbol's last value comes when its interval ends:
		// within a second of the last update.
		p.b.waitFor(t, p.name+": every symbol at /last's value", converged, tickerState)
		var page tickerPage
		p.b.evalJSON(t, `JSON.stringify(window.ticker)`, &page)
		var diff []string
		for sym, w := range want {
			if v := page.Values[sym]; v.Price != w[0] || v.T != w[1] {
				diff = append(diff, fmt.Sprintf("%s: page %s@%s, /last %s@%s", sym, v.Price, v.T, w[0], w[1]))
			}
		}
		sort.Strings(diff)
		if len(diff) > 0 || len(page.Values) != symbols {
			t.Errorf("%s: %d symbols, %d differ from /last: %v", p.name, len(page.Values), len(diff), diff[:min(5, len(diff))])
		}
		got[p.name] = page
		t.Logf("%s page: %d events, loss signals %+v", p.name, page.Events, page.Loss)
	}
	// The publisher started once both pages were open: the live page saw
	// every update, less what the server conflated when it fell behind;
	// the throttled one at most one per symbol per second after its
	// snapshot.
	l, th := got["live"], got["throttled"]
	// Every update reached each page or was reported lost, exactly.
	for name, p := range got {
		if n := p.Events - symbols + p.Loss.Conflated + p.Loss.Dropped; n != updates {
			t.Errorf("%s page: %d events after the snapshot + %d conflated + %d dropped = %d, want the %d published",
				name, p.Events-symbols, p.Loss.Conflated, p.Loss.Dropped, n, updates)
		}
	}
	if th.Events >= l.Events {
		t.Errorf("throttled page got %d events, the live one %d: the throttle did nothing", th.Events, l.Events)
	}
	if th.Loss.Events == 0 || th.Loss.Conflated == 0 {
		t.Errorf("throttled page: loss signals %+v, want conflated updates reported", th.Loss)
	}
	// The publisher ran updates/1000 seconds: the snapshot, each symbol's
	// first update (sent at once), one per symbol per second, and the
	// last interval's.
	if limit := symbols * (1 + 1 + updates/1000 + 1); th.Events > limit {
		t.Errorf("throttled page got %d events, over %d (one per symbol per second)", th.Events, limit)
	}
	srv.stop(t)
}
