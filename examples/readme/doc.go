// Package readme keeps the README true: its Go snippets are the bodies of
// this package's examples, which go test compiles and runs, and its shell
// recipes are the scripts/readme-*.sh that the tests run. The tests also
// fail when a snippet or a recipe in the README and its copy here drift
// apart.
//
//	go test ./examples/readme                 # everything, under half a minute: the scripts build and start nodes
//	go test -short ./examples/readme          # the examples and the drift checks, about 1 s
package readme
