// Package earlysignal starts catching SIGTERM, SIGINT and SIGHUP while the
// program is still initializing its packages, for cmd/node.
//
// Before signal.Notify, the Go runtime ends a process on SIGTERM at once,
// with no log line. cmd/node's imports (gRPC, protobuf, Prometheus,
// memberlist, Envoy's API) take some milliseconds to initialize before
// main runs, so a supervisor that stops a node just after starting it
// would see it vanish silently, with no trace of why. Go initializes
// packages in import-path order as soon as their own imports are ready
// (the language spec, "Package initialization"), and this package needs
// only os/signal: it runs ahead of every heavy dependency, whose paths
// sort after "github.com/drlimit".
package earlysignal

import (
	"os"
	"os/signal"
	"syscall"
)

// C receives SIGTERM, SIGINT and SIGHUP from package initialization on.
// Its buffer holds a few signals, enough for those that arrive before
// main reads it; further ones are dropped, as signal.Notify documents.
var C <-chan os.Signal

func init() {
	c := make(chan os.Signal, 8)
	signal.Notify(c, syscall.SIGTERM, syscall.SIGINT, syscall.SIGHUP)
	C = c
}
