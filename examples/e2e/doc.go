// Package e2e holds the examples' end-to-end tests in a real browser: it
// builds the example commands, runs them as subprocesses on loopback, and
// drives Debian's headless Chromium (/usr/bin/chromium) with chromedp.
// Where the browser is not the point, the project's Go client
// (fastsse/sseclient) takes its place against the same commands.
//
// It is its own module so that the main module never depends on chromedp.
// Chromium is required, not optional: without it the tests fail and say how
// to install it (apt-get update && apt-get install -y chromium).
//
//	cd examples/e2e && go test -count=1 ./...
package e2e
