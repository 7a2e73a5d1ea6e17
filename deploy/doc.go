// Package deploy holds what an operator installs next to the binary, and
// the tests that prove it works on a real machine:
//
//	debian/      the Debian package: systemd unit, maintainer scripts,
//	             control template (built by scripts/build-deb.sh, `make deb`)
//	prometheus/  alert rules and their promtool unit tests
//	grafana/     the service dashboard
//
// The package has no Go code of its own; its tests build the package and
// install it, run promtool over the rules, and check that every metric
// the rules and the dashboard name is exported by a running server.
package deploy
