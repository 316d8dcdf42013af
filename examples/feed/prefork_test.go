package main

import (
	"bufio"
	"net"
	"net/http"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestPreforkSharesBus: feed -prefork 2 -nats embedded. The master hosts
// the NATS server, both children join it: every connection, whichever
// child serves it, sees one sequence under one epoch, and a reconnect with
// Last-Event-ID resumes it with no gap and no duplicate.
func TestPreforkSharesBus(t *testing.T) {
	bin := filepath.Join(t.TempDir(), "feed")
	out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput()
	require.NoError(t, err, "%s", out)
	ln, err := net.Listen("tcp4", "127.0.0.1:0")
	require.NoError(t, err)
	addr := ln.Addr().String()
	ln.Close()
	cmd := exec.Command(bin, "-addr", addr, "-prefork", "2", "-nats", "embedded", "-rate", "100", "-size", "20", "-drain-spread", "0s")
	require.NoError(t, cmd.Start())
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	defer func() {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-exited:
		case <-time.After(20 * time.Second):
			_ = cmd.Process.Kill()
			<-exited
		}
	}()
	client := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{DisableKeepAlives: true}}
	// read opens a stream with lastID and returns the ids of its first n events.
	read := func(lastID string, n int) []string {
		req, _ := http.NewRequest(http.MethodGet, "http://"+addr+"/feed", nil)
		if lastID != "" {
			req.Header.Set("Last-Event-ID", lastID)
		}
		var resp *http.Response
		require.Eventually(t, func() bool {
			var err error
			resp, err = client.Do(req)
			return err == nil
		}, 10*time.Second, 50*time.Millisecond, "the children listen")
		defer resp.Body.Close()
		var ids []string
		sc := bufio.NewScanner(resp.Body)
		for len(ids) < n && sc.Scan() {
			if id, ok := strings.CutPrefix(sc.Text(), "id: "); ok {
				ids = append(ids, id)
			}
		}
		require.Len(t, ids, n)
		return ids
	}
	seq := func(id string) int {
		n, err := strconv.Atoi(id[strings.LastIndexByte(id, '-')+1:])
		require.NoError(t, err, id)
		return n
	}
	var all []string
	last := ""
	for range 8 { // new connections: SO_REUSEPORT spreads them over the children
		ids := read(last, 10)
		all = append(all, ids...)
		last = ids[len(ids)-1]
	}
	epoch := all[0][:strings.LastIndexByte(all[0], '-')]
	for i, id := range all {
		assert.True(t, strings.HasPrefix(id, epoch+"-"), "one epoch: %s", id)
		if i > 0 {
			require.Equal(t, seq(all[i-1])+1, seq(id), "one sequence across reconnects: %v", all)
		}
	}
}
