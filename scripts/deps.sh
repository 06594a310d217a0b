#!/usr/bin/env bash
# Installs, from Debian packages, what ccdir's tests and demo need when it is
# missing: gcc (cgo for SQLite), GnuPG and Sequoia (sq) for interoperability,
# python3 for the demo and the README's check.py. With "build" (what
# scripts/install.sh runs), only what building needs: gcc and git.
# Then checks that the Go on PATH is at least the go line of go.mod, and
# says what to do when it is not: it never lets the go command fetch a
# toolchain unasked.
set -euo pipefail
cd "$(dirname "$0")/.."

need=()
command -v gcc >/dev/null || need+=(gcc libc6-dev)
command -v git >/dev/null || need+=(git) # the commit ccdir version names
if [ "${1:-}" != build ]; then
	command -v gpg >/dev/null || need+=(gnupg)
	command -v gpg-agent >/dev/null || need+=(gpg-agent)
	command -v sq >/dev/null || need+=(sq)
	command -v python3 >/dev/null || need+=(python3) # the demo reads MIME with it; tests run the README's check.py
fi

if ((${#need[@]})); then
	echo "scripts/deps.sh: installing ${need[*]}" >&2
	sudo=""
	if [ "$(id -u)" -ne 0 ]; then sudo=sudo; fi
	$sudo apt-get update -qq
	DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
fi

# The Go that builds ccdir: go.mod's go line is the oldest that can.
want=$(sed -n 's/^go \([0-9][0-9.]*\)$/\1/p' go.mod)
debian=$(cut -d. -f1 /etc/debian_version 2>/dev/null || true)

too_old() {
	echo "scripts/deps.sh: $1; ccdir needs Go $want or newer (the go line of go.mod)." >&2
	case $debian in
	13 | 14 | 15)
		echo "  Debian $debian: sudo apt-get install golang-go   # Go 1.24 on Debian 13" >&2
		;;
	12)
		cat >&2 <<-EOF
			  Debian 12's golang-go is Go 1.19, and bookworm-backports has Go 1.23 at most. Either
			  - install Go $want or newer from https://go.dev/doc/install (into /usr/local/go,
			    then: export PATH=/usr/local/go/bin:\$PATH), or
			  - with bookworm-backports in apt's sources:
			      sudo apt-get install -t bookworm-backports golang-1.23-go
			      export PATH=/usr/lib/go-1.23/bin:\$PATH GOTOOLCHAIN=go$want
			    and that Go fetches Go $want itself from the Go module proxy (once,
			    checked against the checksum database).
		EOF
		;;
	*)
		echo "  install Go $want or newer: https://go.dev/doc/install" >&2
		;;
	esac
	exit 1
}

if ! command -v go >/dev/null; then
	too_old "go is not on PATH"
fi
# The Go on PATH itself (GOTOOLCHAIN=local: asking must not download one).
have=$(GOTOOLCHAIN=local go env GOVERSION 2>/dev/null || true)
have=${have#go}
have=${have%%[!0-9.]*} # go1.24rc1, go1.26.8 X:... → 1.24, 1.26.8
if [ -z "$have" ]; then
	too_old "$(command -v go) does not say its version (Go before 1.16?)"
fi
oldest=$(printf '%s\n%s\n' "$want" "$have" | sort -V | head -1)
if [ "$oldest" != "$want" ]; then
	case ${GOTOOLCHAIN:-} in
	go[0-9]* | *+auto | auto)
		# Asked for: the go command switches to a newer toolchain itself.
		echo "scripts/deps.sh: go on PATH is Go $have; GOTOOLCHAIN=$GOTOOLCHAIN, so the go command fetches and runs Go $want or newer" >&2
		;;
	*)
		too_old "go on PATH ($(command -v go)) is Go $have"
		;;
	esac
fi
