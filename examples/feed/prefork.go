//go:build unix

package main

import (
	"context"
	"log"
	"os"
	"os/signal"
	"runtime"
	"sync"
	"syscall"
	"time"

	"github.com/lasse-go/lasse/examples/internal/serve"
	"github.com/valyala/fasthttp/prefork"
)

// runMaster starts procs copies of this command that each listen on addr
// with SO_REUSEPORT (fasthttp's prefork), so that one machine can hold
// more connections than the open files one process may have. Each child is
// a whole feed, with its own publisher and id sequence.
//
// fasthttp's prefork master restarts a child that exits and does not
// handle signals; here SIGINT and SIGTERM are passed on to the children,
// which drain, and the master returns once they have exited.
//
// The master stays small however many children it has: it builds no feed,
// and once every child has started it runs on one P (prefork starts one
// child per GOMAXPROCS, so it is raised to procs for the start only).
func runMaster(addr string, procs int) error {
	runtime.GOMAXPROCS(procs) // prefork starts one child per GOMAXPROCS
	var (
		mu       sync.Mutex
		children = map[int]bool{}
		stopping bool
	)
	p := &prefork.Prefork{
		Network:          "tcp4",
		Reuseport:        true,
		RecoverThreshold: procs,
		OnChildSpawn: func(pid int) error {
			mu.Lock()
			defer mu.Unlock()
			children[pid] = true
			if stopping { // a replacement started during shutdown
				_ = syscall.Kill(pid, syscall.SIGTERM)
			}
			return nil
		},
	}
	p.OnMasterReady = func([]int) error {
		runtime.GOMAXPROCS(1)
		return nil
	}
	p.ServeFunc = nil // children serve from main; the master never does
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	done := make(chan error, 1)
	go func() { done <- p.ListenAndServe(addr) }()
	select {
	case err := <-done:
		return err
	case <-ctx.Done():
	}
	mu.Lock()
	stopping = true
	for pid := range children {
		_ = syscall.Kill(pid, syscall.SIGTERM)
	}
	mu.Unlock()
	deadline := time.Now().Add(serve.Grace + time.Second)
	for time.Now().Before(deadline) {
		alive := 0
		mu.Lock()
		for pid := range children {
			if syscall.Kill(pid, 0) == nil {
				alive++
			}
		}
		mu.Unlock()
		if alive == 0 {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	log.Printf("prefork: children stopped")
	return nil
}
