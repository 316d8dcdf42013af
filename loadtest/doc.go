// Package loadtest is the library behind the sse-bench command: a load
// generator for Server-Sent Events servers on loopback.
//
// Run takes a Config and returns a Result. It opens Config.Conns raw TCP
// connections (from source addresses 127.0.0.2, 127.0.0.3, ... for an IPv4
// loopback target), sends GET with Accept: text/event-stream, decodes the
// HTTP/1.1 response (chunked, Content-Length or close-delimited) and parses
// the event stream as WHATWG specifies (Parser, bodyDecoder). From each event it
// takes the latency (receive time minus the Unix-nanoseconds time at the
// start of the data, as examples/feed sends) and the id (consecutive numbers,
// bare or as fastsse's EPOCH-SEQ, where a new epoch counts as a gap: gaps and
// duplicates, per connection, from its first id).
//
// Reading: with IOEpoll (the Linux default) a few goroutines, one per
// GOMAXPROCS, each own an epoll set and a 64 KB buffer shared by all their
// connections, and record into their own HDR histogram without a lock; a
// connection costs its socket and a small struct. IOGoroutine gives each
// connection a goroutine and a 4 KB buffer, and shards the histograms
// under a mutex.
//
// Processes: a process here may open 20,000 files, so Config.Procs worker
// processes (by default one per ConnsPerProc connections) each hold a share.
// The parent starts them with Options.WorkerCommand (by default its own
// executable with -worker SPEC), which must call RunWorker; they report
// progress and their result as JSON lines on stdout, take "measure" and
// "stop" on stdin, and stop when stdin ends. The parent merges their
// histograms and counters.
//
// Every phase is bounded: connecting (by Config.Ramp, plus 30 s), settling,
// and the measuring window (Config.Duration, at most MaxDuration).
package loadtest
