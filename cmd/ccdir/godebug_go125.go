//go:build go1.25 && !go1.26

//go:debug default=go1.25

package main

// go.mod says go 1.24.0 so that Debian 13's Go 1.24 builds ccdir; the go
// line also picks the default GODEBUG settings. Built by a newer Go, ccdir
// keeps that Go's own defaults (here Go 1.25's: no SHA-1 signatures in TLS
// 1.2 handshakes, GOMAXPROCS that follows the cgroup's CPU limit), as if
// go.mod named it. See godebug_go126.go and docs/ARCHITECTURE.md, Build.
