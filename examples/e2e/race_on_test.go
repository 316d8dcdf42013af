//go:build race

package e2e

// raceBuild reports whether the test runs under the race detector; the
// example commands are then built with -race too.
const raceBuild = true
