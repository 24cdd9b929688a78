package api

// exported.txt is the listing of every exported identifier of the
// module's public packages, one per line, in the manner of Go's own
// api/go1.*.txt files. A change to the exported API fails this package's
// test until the listing is regenerated in the same commit:
//
//	go generate ./api
//
// The packages listed are every package of the module outside internal/
// that is not a command, less the few that internal/apilist's Excluded
// names with a reason.

//go:generate go run ./cmd/apilist -w
