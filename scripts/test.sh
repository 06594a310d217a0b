#!/usr/bin/env bash
# Runs every test of ccdir: formatting, vet, the Go tests (unit, CLI
# testscripts, gpg/sq interoperability) with the race detector, and a real
# Postfix bounce (scripts/test-postfix.sh).
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

# A real Postfix bounce, through a private instance on 127.0.0.1 (bounded:
# it fails after its own timeouts, never hangs).
timeout 600 scripts/test-postfix.sh

# Each fuzz target runs briefly (FUZZTIME, default 15s), seeded from its
# corpus: FuzzProcess (pkg/inbound), FuzzParse (pkg/mailcmd) and any other
# func Fuzz* found in a _test.go file. FUZZTIME=0 skips them.
fuzztime=${FUZZTIME:-15s}
if [ "$fuzztime" != 0 ]; then
	for file in $(grep -rlE --include='*_test.go' '^func Fuzz[A-Za-z0-9_]*\(' . | sort); do
		pkg=./$(dirname "${file#./}")
		for fuzzer in $(sed -nE 's/^func (Fuzz[A-Za-z0-9_]*)\(.*/\1/p' "$file"); do
			echo "fuzz $fuzzer in $pkg for $fuzztime"
			go test -run '^$' -fuzz "^${fuzzer}\$" -fuzztime "$fuzztime" "$pkg"
		done
	done
fi
