//go:build !unix

package loadtest

import "errors"

func setSockBuf(uintptr, int) error { return errors.New("-sockbuf: Unix only") }
