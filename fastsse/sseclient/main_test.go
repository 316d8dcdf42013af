package sseclient_test

import (
	"testing"

	"github.com/lasse-go/lasse/internal/leaktest"
)

// TestMain fails the run when a test leaves a goroutine behind: a Stream's
// own transport must not keep idle connections once its context ends.
func TestMain(m *testing.M) {
	leaktest.VerifyTestMain(m)
}
