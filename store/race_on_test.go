//go:build race

package store

// raceBuild is true when the tests run under the race detector, which
// slows the pure-Go SQLite driver several times over and so changes the
// timing of the WAL checkpointer against the writer.
const raceBuild = true
