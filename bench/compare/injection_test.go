package compare

import (
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/lasse-go/lasse/fastsse"
)

// injectionCase is an event whose fields hold line breaks. A correct encoder
// either sends it so that a client reads exactly the intended event (data line
// breaks become LF), or refuses it (the only correct answer for an id or type
// that holds a line break, since no wire form can carry one).
type injectionCase struct {
	name          string
	id, typ, data string
	field         string // the field that holds the attack: "id", "type" or "data"
	lasseErr      error  // what fastsse must return; nil: it must send the event
}

var injectionCases = []injectionCase{
	{name: "data CR-only breaks", data: "a\rb\rc", field: "data"},
	{name: "data CRLF breaks", data: "a\r\nb\r\nc", field: "data"},
	{name: "data LF injection", data: "hi\n\nevent: evil\ndata: pwned", field: "data"},
	{name: "data CR injection", data: "hi\r\revent: evil\rdata: pwned", field: "data"},
	{name: "id with LF", id: "1\nevent: evil", data: "x", field: "id", lasseErr: fastsse.ErrInvalidID},
	{name: "id with CR", id: "1\revent: evil", data: "x", field: "id", lasseErr: fastsse.ErrInvalidID},
	{name: "type with LF", typ: "x\ndata: evil", data: "x", field: "type", lasseErr: fastsse.ErrInvalidType},
	{name: "type with CR", typ: "x\rid: evil", data: "x", field: "type", lasseErr: fastsse.ErrInvalidType},
}

// Outcomes, from best to worst.
const (
	outcomeOK       = "ok"       // one event, the intended fields
	outcomeRefused  = "refused"  // the library returned an error (or panicked)
	outcomeAltered  = "altered"  // one event, the attacked field changed (escaped, cut, lines lost)
	outcomeInjected = "INJECTED" // another event, or a field other than the attacked one, came from the input
)

// classify encodes c with p and says what a client reads.
func classify(p peer, c injectionCase) (outcome, detail string) {
	out, err := safeEncode(p, c.id, c.typ, c.data)
	if err != nil {
		return outcomeRefused, err.Error()
	}
	want := specEvent{Type: c.typ, ID: c.id, Data: normalizeBreaks(c.data), IDSet: c.id != ""}
	if want.Type == "" {
		want.Type = "message"
	}
	var sp specParser
	got := sp.Feed(out)
	detail = fmt.Sprintf("%q", out)
	if len(got) != 1 || sp.Pending() {
		return outcomeInjected, detail
	}
	g := got[0]
	if g == want {
		return outcomeOK, detail
	}
	// Which fields differ from the intended event?
	other := false
	if g.Type != want.Type {
		other = other || c.field != "type"
	}
	if g.ID != want.ID || g.IDSet != want.IDSet {
		other = other || c.field != "id"
	}
	if g.Data != want.Data {
		other = other || c.field != "data"
	}
	if other || g.HasRetry || g.Type == "evil" || g.ID == "evil" {
		return outcomeInjected, detail
	}
	return outcomeAltered, detail
}

// TestInjection feeds every peer the injection cases and logs a table of what
// a client reads. A peer's misbehaviour is recorded, not failed; fastsse's
// fails the test.
func TestInjection(t *testing.T) {
	var tbl strings.Builder
	fmt.Fprintf(&tbl, "\n| case |")
	for _, p := range peers {
		fmt.Fprintf(&tbl, " %s |", p.name)
	}
	fmt.Fprintf(&tbl, "\n|---|")
	for range peers {
		fmt.Fprintf(&tbl, "---|")
	}
	var details strings.Builder
	for _, c := range injectionCases {
		fmt.Fprintf(&tbl, "\n| %s |", c.name)
		for _, p := range peers {
			outcome, detail := classify(p, c)
			fmt.Fprintf(&tbl, " %s |", outcome)
			fmt.Fprintf(&details, "\n%s / %s: %s: %s", c.name, p.name, outcome, detail)
		}
		checkLasse(t, c)
	}
	t.Log(tbl.String())
	t.Log("wire bytes:" + details.String())
}

// checkLasse fails the test unless fastsse sends c exactly, or refuses it with
// the right sentinel and appends nothing.
func checkLasse(t *testing.T, c injectionCase) {
	t.Helper()
	dst := []byte("data: before\n\n")
	out, err := fastsse.AppendEvent(dst, &fastsse.Event{ID: c.id, Event: c.typ, Data: c.data})
	if c.lasseErr != nil {
		if !errors.Is(err, c.lasseErr) || string(out) != "data: before\n\n" {
			t.Errorf("%s: fastsse: got %v, %q; want %v and dst unchanged", c.name, err, out, c.lasseErr)
		}
		return
	}
	if err != nil {
		t.Errorf("%s: fastsse refused: %v", c.name, err)
		return
	}
	if outcome, detail := classify(peers[0], c); outcome != outcomeOK {
		t.Errorf("%s: fastsse: %s: %s", c.name, outcome, detail)
	}
}
