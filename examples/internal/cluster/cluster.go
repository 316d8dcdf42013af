// Package cluster joins an example to a NATS JetStream cluster: the -nats
// flag, an embedded nats-server for demos and tests, and the bus.
package cluster

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log"
	"net"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/lasse-go/lasse/fastsse/natsbus"
	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
)

// EnvURL passes an embedded server's URL to prefork children.
const EnvURL = "LASSE_NATS_URL"

// Flag registers -nats.
func Flag() *string {
	return flag.String("nats", "", "join a cluster over NATS JetStream: a server URL (nats://127.0.0.1:4222), or \"embedded\" (\"embedded:PORT\") to start one in this process, on a loopback port, with a temporary store; empty: this process alone")
}

// Embedded is an in-process nats-server with JetStream, listening on a
// loopback port so that other processes can join it.
type Embedded struct {
	s   *server.Server
	dir string
}

// StartEmbedded starts one with its store in a new temporary directory,
// on port (-1: any free port).
func StartEmbedded(port int) (*Embedded, error) {
	dir, err := os.MkdirTemp("", "lasse-nats-")
	if err != nil {
		return nil, err
	}
	s, err := server.NewServer(&server.Options{
		Host: "127.0.0.1", Port: port, JetStream: true, StoreDir: dir, NoLog: true, NoSigs: true,
	})
	if err != nil {
		os.RemoveAll(dir)
		return nil, err
	}
	go s.Start()
	if !s.ReadyForConnections(10 * time.Second) {
		s.Shutdown()
		os.RemoveAll(dir)
		return nil, errors.New("embedded nats-server not ready within 10s")
	}
	return &Embedded{s: s, dir: dir}, nil
}

// URL is the server's client URL.
func (e *Embedded) URL() string {
	return fmt.Sprintf("nats://127.0.0.1:%d", e.s.Addr().(*net.TCPAddr).Port)
}

// Close stops the server and removes its store.
func (e *Embedded) Close() {
	e.s.Shutdown()
	e.s.WaitForShutdown()
	os.RemoveAll(e.dir)
}

// Conn is a process's membership of the cluster.
type Conn struct {
	Bus      *natsbus.Bus
	nc       *nats.Conn
	embedded *Embedded
}

// Join connects to the cluster that value names (a URL, or "embedded") and
// returns the bus on stream, or nil for "" (no cluster). A prefork child
// whose master hosts the embedded server finds its URL in EnvURL.
func Join(ctx context.Context, value, stream string) (*Conn, error) {
	if value == "" {
		return nil, nil
	}
	c := &Conn{}
	url := value
	if port, ok := EmbeddedPort(value); ok {
		if u := os.Getenv(EnvURL); u != "" {
			url = u
		} else {
			e, err := StartEmbedded(port)
			if err != nil {
				return nil, err
			}
			c.embedded, url = e, e.URL()
			log.Printf("nats: embedded server at %s", url)
		}
	}
	nc, err := nats.Connect(url, nats.Name("lasse-"+stream), nats.MaxReconnects(-1), nats.ReconnectWait(100*time.Millisecond))
	if err != nil {
		c.Close()
		return nil, fmt.Errorf("-nats %s: %w", url, err)
	}
	c.nc = nc
	bus, err := natsbus.New(ctx, nc, natsbus.Config{Stream: stream, Subject: stream})
	if err != nil {
		c.Close()
		return nil, err
	}
	c.Bus = bus
	return c, nil
}

// EmbeddedPort reads "embedded" (any port: -1) or "embedded:PORT".
func EmbeddedPort(value string) (int, bool) {
	if value == "embedded" {
		return -1, true
	}
	p, ok := strings.CutPrefix(value, "embedded:")
	if !ok {
		return 0, false
	}
	n, err := strconv.Atoi(p)
	if err != nil || n <= 0 || n > 65535 {
		return 0, false
	}
	return n, true
}

// URL is the server's URL to give other processes: the embedded server's,
// or the one joined.
func (c *Conn) URL() string { return c.nc.ConnectedUrl() }

// Close leaves the cluster (and stops an embedded server).
func (c *Conn) Close() {
	if c == nil {
		return
	}
	if c.nc != nil {
		c.nc.Close()
	}
	if c.embedded != nil {
		c.embedded.Close()
	}
}
