package sseclient

import (
	"testing"

	"github.com/lasse-go/lasse/fastsse"
)

// TestGapTypeIsTheServers: the client does not import fastsse (a client
// needs no fasthttp), so it names the gap signal itself; this keeps the two
// names one.
func TestGapTypeIsTheServers(t *testing.T) {
	if gapType != fastsse.GapEvent {
		t.Fatalf("sseclient's gap type %q, fastsse's %q", gapType, fastsse.GapEvent)
	}
}
