// Package e2e holds the end-to-end tests: end-to-end tests that need whole
// nodes live here, so the packages they exercise test themselves without
// booting one (`go test ./tenant` builds no node). Files are named by topic
// (tenant_*.go, smtpd_*.go, ...) and shared helpers carry their topic as a
// prefix, since every file shares one package.
package e2e
