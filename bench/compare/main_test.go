package compare

import (
	"testing"

	"github.com/lasse-go/lasse/internal/leaktest"
)

// TestMain fails the run when a test leaves a goroutine behind (the client
// tests start servers and clients).
func TestMain(m *testing.M) {
	leaktest.VerifyTestMain(m)
}
