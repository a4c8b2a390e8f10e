// Package archtest checks what docs/architecture.md says a machine can
// check: every package is on the map, and the forbidden import arrows are
// absent. It has no code, only tests, run with the rest of the tree.
package archtest
