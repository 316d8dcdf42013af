package ssetest

import "github.com/lasse-go/lasse/fastsse"

// The dense transport runs where it is supported; elsewhere fastsse would
// serve a dense endpoint on the stream transport, and the entry would test
// that twice under two names.
func init() {
	Transports = append(Transports, Transport{
		Name:      "dense",
		Set:       func(o *fastsse.Options) { o.Transport = fastsse.TransportDense },
		ServeWith: serveFastHTTP,
	})
}
