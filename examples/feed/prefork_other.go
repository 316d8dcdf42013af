//go:build !unix

package main

import "errors"

// runMaster refuses: the master stops its children with SIGTERM so that
// each drains its streams, and only Unix systems have signals to send
// another process.
func runMaster(string, int) error {
	return errors.New("-prefork: needs a Unix system (the children are stopped with SIGTERM, so that they drain)")
}
