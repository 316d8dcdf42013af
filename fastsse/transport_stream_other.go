//go:build !linux

package fastsse

import "net"

// peerClosed is Linux-only; elsewhere a gone client is noticed when a write
// fails.
func peerClosed(net.Conn) bool { return false }
