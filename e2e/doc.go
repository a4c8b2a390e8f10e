// Package e2e holds the end-to-end tests: end-to-end tests that need whole
// nodes live here. Each runs real nodes in-process on loopback (through
// internal/nodetest) in front of recording downstream servers, and checks
// what the sender heard, what the customer's server got and what the node
// stored or reported. A package's own behaviour is tested in that package,
// without a node; a test belongs here when what it asserts depends on the
// node's wiring (stages built from the config, the store, /readyz, several
// nodes).
//
// Files are named by topic (clamav_test.go, auth_test.go, ...), and helpers
// shared by one topic carry its name, so topics added in parallel do not
// collide.
package e2e
