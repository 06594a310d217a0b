#!/usr/bin/env bash
# Runs every test of ccdir: formatting, vet, the Go tests (unit, CLI
# testscripts, gpg/sq interoperability) with the race detector, ccdir
# behind a real Postfix (scripts/test-postfix.sh), the example systemd
# units (scripts/test-systemd.sh) and the Litestream replication recipe
# (scripts/test-litestream.sh).
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

# scripts/install.sh into temporary DESTDIRs, the tree and the binary
# checked; then the oldest Go go.mod allows (Debian 13's 1.24) builds,
# vets and tests ccdir (bounded).
timeout 600 scripts/test-install.sh
timeout 2400 scripts/test-go124.sh

# A real Postfix, through a private instance on 127.0.0.1, configured from
# scripts/examples, delivering to ccdir by the pipe and by LMTP (bounded:
# it fails after its own timeouts, never hangs).
timeout 600 scripts/test-postfix.sh

# The example systemd units pass systemd-analyze verify (when installed).
timeout 300 scripts/test-systemd.sh

# The replication recipe (docs/replication.md): Litestream to a file
# replica, keys by ccdir backup --keys-only, restored on "the other host"
# (bounded: installs litestream into a cache once, then about 10 s).
timeout 1200 scripts/test-litestream.sh

# Each fuzz target runs briefly (FUZZTIME, default 15s), seeded from its
# corpus: FuzzProcess (pkg/inbound), FuzzParse (pkg/mailcmd) and any other
# func Fuzz* found in a _test.go file. FUZZTIME=0 skips them.
fuzztime=${FUZZTIME:-15s}

# fuzz_once runs one fuzz target. The fuzzing engine, on a loaded 2-core
# machine, sometimes stops its workers with "context deadline exceeded"
# before the time is up, having found nothing: that one failure, with no
# failing input written, is run once more. A real finding (a crasher in
# testdata/fuzz) or any other failure fails at once.
fuzz_once() {
	local out
	out=$(mktemp)
	if go test -run '^$' -fuzz "^$1\$" -fuzztime "$fuzztime" "$2" 2>&1 | tee "$out"; then
		rm -f "$out"
		return 0
	fi
	if grep -q 'context deadline exceeded' "$out" && ! grep -q 'Failing input written to' "$out"; then
		rm -f "$out"
		echo "fuzz $1: the engine stopped on a deadline with no finding; running it once more"
		go test -run '^$' -fuzz "^$1\$" -fuzztime "$fuzztime" "$2"
		return
	fi
	rm -f "$out"
	return 1
}
if [ "$fuzztime" != 0 ]; then
	for file in $(grep -rlE --include='*_test.go' '^func Fuzz[A-Za-z0-9_]*\(' . | sort); do
		pkg=./$(dirname "${file#./}")
		for fuzzer in $(sed -nE 's/^func (Fuzz[A-Za-z0-9_]*)\(.*/\1/p' "$file"); do
			echo "fuzz $fuzzer in $pkg for $fuzztime"
			fuzz_once "$fuzzer" "$pkg"
		done
	done
fi
