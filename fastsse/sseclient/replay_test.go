package sseclient_test

import (
	"bufio"
	"bytes"
	"net"
	"strconv"
	"sync"
	"testing"

	"github.com/stretchr/testify/require"
)

// benchStream is 1,000 events of a typical feed, pre-encoded: an id, a type
// on one in ten, data of about 100 bytes, a heartbeat comment now and then.
func benchStream() []byte {
	var b bytes.Buffer
	for i := 1; i <= 1000; i++ {
		b.WriteString("id: " + strconv.Itoa(1000000+i) + "\n")
		if i%10 == 0 {
			b.WriteString("event: update\n")
		}
		b.WriteString(`data: {"seq":` + strconv.Itoa(i) + `,"symbol":"LASSE","price":12345.67,"qty":100,"side":"buy","venue":"X"}` + "\n\n")
		if i%100 == 0 {
			b.WriteString(": \n\n")
		}
	}
	return b.Bytes()
}

// replayServer answers every request on a loopback listener with a 200
// text/event-stream, close-delimited, whose body is block over and over
// until the client leaves. It allocates nothing per write. It stops at the
// end of the test.
func replayServer(t testing.TB, block []byte) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	var wg sync.WaitGroup
	wg.Go(func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			wg.Go(func() {
				defer c.Close()
				br := bufio.NewReader(c)
				for { // the request head
					line, err := br.ReadSlice('\n')
					if err != nil {
						return
					}
					if len(bytes.TrimRight(line, "\r\n")) == 0 {
						break
					}
				}
				if _, err := c.Write([]byte("HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nCache-Control: no-cache\r\nConnection: close\r\n\r\n")); err != nil {
					return
				}
				for {
					if _, err := c.Write(block); err != nil {
						return
					}
				}
			})
		}
	})
	t.Cleanup(func() { ln.Close(); wg.Wait() })
	return "http://" + ln.Addr().String() + "/"
}
