package fastsse

import (
	"testing"

	"github.com/lasse-go/lasse/internal/leaktest"
)

// TestMain fails the run when a test leaves a goroutine behind (see
// internal/leaktest for the two of fasthttp's that are let be).
func TestMain(m *testing.M) {
	leaktest.VerifyTestMain(m)
}
