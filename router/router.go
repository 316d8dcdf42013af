// Package router mounts fastsse endpoints on github.com/fasthttp/router.
//
// lasse's Cowboy route {"/your/[:route]", lasse_handler, [Module]} is
//
//	router.Mount(r, "/your/{route?}", ep)
//
// and Init reads the parameter with req.Param("route"): "" for /your, "x" for
// /your/x. The package adds no logic: the endpoint answers every method
// itself, so a POST gets the same 405 (Allow: GET) as without a router.
package router

import (
	frouter "github.com/fasthttp/router"
	"github.com/lasse-go/lasse/fastsse"
)

// Mount serves ep at path on r for every method. path uses fasthttp/router's
// syntax: {name} is a parameter, {name?} an optional one.
func Mount(r *frouter.Router, path string, ep *fastsse.Endpoint) {
	r.ANY(path, ep.ServeFastHTTP)
}
