#!/usr/bin/env bash
# Runs every test of ccdir: formatting, vet, and the Go tests (unit, CLI
# testscripts, gpg/sq interoperability), with the race detector.
# Installs gnupg and sq from Debian packages first when they are missing:
# the interoperability tests fail, never skip, without them.
set -euo pipefail
cd "$(dirname "$0")/.."

scripts/deps.sh

unformatted=$(gofmt -l $(git ls-files '*.go' 2>/dev/null || find . -name '*.go'))
if [ -n "$unformatted" ]; then
	printf 'gofmt would change:\n%s\n' "$unformatted" >&2
	exit 1
fi
go vet ./...
go test -race -count=1 -timeout 30m ./...
