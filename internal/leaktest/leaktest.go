// Package leaktest is goleak as every package of this module that serves
// fasthttp uses it in TestMain.
package leaktest

import (
	"testing"

	"go.uber.org/goleak"
)

// fasthttpOwn are the goroutines of fasthttp's own that outlive a test by
// design: the process-wide Date-header ticker, started once and never
// stopped, and a worker pool's cleaner, which notices that its server has
// stopped only after sleeping MaxIdleWorkerDuration (10 s).
var fasthttpOwn = []goleak.Option{
	goleak.IgnoreAnyFunction("github.com/valyala/fasthttp.updateServerDate.func1"),
	goleak.IgnoreAnyFunction("github.com/valyala/fasthttp.(*workerPool).Start.func2"),
}

// VerifyTestMain runs the tests, then fails the run if any goroutine but
// fasthttp's own is left behind.
func VerifyTestMain(m *testing.M) {
	goleak.VerifyTestMain(m, fasthttpOwn...)
}
