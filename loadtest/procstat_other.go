//go:build !unix

package loadtest

import "time"

func selfCPU() time.Duration { return 0 }
func openFileLimit() int     { return 0 }
