//go:build race

package main

// raceBuild is true when the tests run under the race detector: TestMain
// then builds the binary under test with it too, so that `go test -race`
// checks the servers the tests start, not only the test process.
const raceBuild = true
