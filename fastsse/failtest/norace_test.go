//go:build linux && !race

package failtest

// raceEnabled reports whether the race detector is on.
const raceEnabled = false
