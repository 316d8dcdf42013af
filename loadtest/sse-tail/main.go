// Command sse-tail prints a Server-Sent Events stream as it arrives, like
// curl -N, but parsed and kept alive: it reconnects with Last-Event-ID when
// the server ends the stream or the connection breaks or goes silent, and
// stops when the server answers 204 (or any status but 200).
//
//	go run ./loadtest/sse-tail http://127.0.0.1:8080/news
//	go run ./loadtest/sse-tail -json -n 10 -H 'Authorization: Bearer x' http://127.0.0.1:8080/news
//
// Events go to stdout, one block each (id, event when not "message", one
// data line per line, a blank line), or with -json one JSON object per
// line. Reconnections, gaps and the final error go to stderr. It exits 0
// after -n events or on SIGINT/SIGTERM, 1 when the stream stopped for good,
// 2 on bad usage.
package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/lasse-go/lasse/fastsse/sseclient"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

// headers is the repeatable -H flag.
type headers http.Header

func (h headers) String() string { return "" }

func (h headers) Set(s string) error {
	name, value, ok := strings.Cut(s, ":")
	name = strings.TrimSpace(name)
	if !ok || name == "" {
		return fmt.Errorf("header %q: want 'Name: value'", s)
	}
	http.Header(h).Add(name, strings.TrimSpace(value))
	return nil
}

// run is the command: it returns the exit code.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("sse-tail", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprintln(stderr, "usage: sse-tail [flags] URL")
		fs.PrintDefaults()
	}
	hdr := headers{}
	fs.Var(hdr, "H", "request header `Name: value` (repeatable)")
	lastID := fs.String("last-event-id", "", "Last-Event-ID for the first request")
	n := fs.Int("n", 0, "stop after this many events; 0: never")
	asJSON := fs.Bool("json", false, "print one JSON object per event: {\"id\",\"event\",\"data\"}")
	readTimeout := fs.Duration("read-timeout", 0, "reconnect when nothing arrives for this long; 0: the client's default (45s), negative: never")
	maxRetry := fs.Duration("max-retry", 0, "the longest wait between attempts, the server's retry included; 0: the client's default (30s)")
	quiet := fs.Bool("q", false, "do not report reconnections on stderr")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if fs.NArg() != 1 || *n < 0 {
		fs.Usage()
		return 2
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	logf := func(format string, a ...any) {
		if !*quiet {
			fmt.Fprintf(stderr, "sse-tail: "+format+"\n", a...)
		}
	}
	opts := &sseclient.Options{
		Header:      http.Header(hdr),
		LastEventID: *lastID,
		ReadTimeout: *readTimeout,
		Backoff:     sseclient.Backoff{Max: *maxRetry},
		OnError: func(err error, wait time.Duration) {
			logf("%v; reconnecting in %v", err, wait.Round(time.Millisecond))
		},
		OnGap: func(id string) { fmt.Fprintf(stderr, "sse-tail: gap: the server could not resume after id %q\n", id) },
	}
	w := bufio.NewWriter(stdout)
	count := 0
	for ev, err := range sseclient.Connect(ctx, fs.Arg(0), opts).Events() {
		if err != nil {
			if errors.Is(err, context.Canceled) && ctx.Err() != nil {
				return 0
			}
			fmt.Fprintln(stderr, "sse-tail:", err)
			return 1
		}
		if *asJSON {
			writeJSON(w, ev)
		} else {
			writeText(w, ev)
		}
		if err := w.Flush(); err != nil {
			fmt.Fprintln(stderr, "sse-tail:", err)
			return 1
		}
		if count++; count == *n {
			return 0
		}
	}
	return 0
}

// writeText writes ev as an event-stream block: the same fields a server
// would send, normalised.
func writeText(w *bufio.Writer, ev sseclient.Event) {
	if len(ev.ID) > 0 {
		w.WriteString("id: ")
		w.Write(ev.ID)
		w.WriteByte('\n')
	}
	if string(ev.Type) != "message" {
		w.WriteString("event: ")
		w.Write(ev.Type)
		w.WriteByte('\n')
	}
	data := ev.Data
	for {
		line, rest, more := bytes.Cut(data, []byte("\n"))
		w.WriteString("data: ")
		w.Write(line)
		w.WriteByte('\n')
		if !more {
			break
		}
		data = rest
	}
	w.WriteByte('\n')
}

func writeJSON(w *bufio.Writer, ev sseclient.Event) {
	b, _ := json.Marshal(struct {
		ID    string `json:"id"`
		Event string `json:"event"`
		Data  string `json:"data"`
	}{string(ev.ID), string(ev.Type), string(ev.Data)})
	w.Write(b)
	w.WriteByte('\n')
}
