//go:build go1.26

//go:debug default=go1.26

package main

// go.mod says go 1.24.0 so that Debian 13's Go 1.24 builds ccdir; the go
// line also picks the default GODEBUG settings. Built by Go 1.26 or newer,
// ccdir keeps Go 1.26's defaults (among them: no SHA-1 signatures in TLS
// 1.2 handshakes, the hybrid post-quantum SecP256r1MLKEM768 key exchange
// offered, strict colons in URL hosts, GOMAXPROCS that follows the
// cgroup's CPU limit, crypto that ignores a custom random source), as if
// go.mod named go 1.26. See godebug_go125.go and docs/ARCHITECTURE.md,
// Build.
