//go:build race

package signer

// raceBuild is true when the tests run under the race detector, whose
// shadow memory adds to every process's RSS.
const raceBuild = true
