#!/usr/bin/env bash
# Installs, from Debian packages, what ccdir's tests and demo need when it is
# missing: gcc (cgo for SQLite), GnuPG and Sequoia (sq) for interoperability,
# python3 for the demo and the README's check.py.
# Go itself must already be on PATH (https://go.dev/doc/install).
set -euo pipefail

need=()
command -v gcc >/dev/null || need+=(gcc libc6-dev)
command -v gpg >/dev/null || need+=(gnupg)
command -v gpg-agent >/dev/null || need+=(gpg-agent)
command -v sq >/dev/null || need+=(sq)
command -v git >/dev/null || need+=(git)
command -v python3 >/dev/null || need+=(python3) # the demo reads MIME with it; tests run the README's check.py

if ((${#need[@]})); then
	echo "scripts/deps.sh: installing ${need[*]}" >&2
	sudo=""
	if [ "$(id -u)" -ne 0 ]; then sudo=sudo; fi
	$sudo apt-get update -qq
	DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
fi

if ! command -v go >/dev/null; then
	echo "scripts/deps.sh: go is not on PATH; install Go 1.26 or newer" >&2
	exit 1
fi
