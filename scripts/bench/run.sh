#!/usr/bin/env bash
# Runs ccdir's benchmarks: import of 1,000 contacts with keys through the
# CLI, verify of 1,000- and 10,000-entry ledgers (time per entry and peak
# Go heap, which must stay flat as the ledger grows), and the key-level
# micro-benchmarks; then scripts/bench/digest.sh. Output goes to stdout and to
# bench.out (for benchstat) and bench-digest.out.
set -euo pipefail
cd "$(dirname "$0")/../.."
scripts/deps.sh
count=${COUNT:-3}
go test -run '^$' -bench . -benchmem -count "$count" -benchtime "${BENCHTIME:-3x}" \
	./cmd/ccdir ./keys ./directory 2>&1 | tee bench.out

# Digest send to 1,000 and 10,000 recipients (each size in its own process,
# for its own peak RSS) and the one-gpg-process-per-recipient baseline:
# scripts/bench/digest.sh, about 6 minutes. DIGEST=0 skips it.
if [[ ${DIGEST:-1} != 0 ]]; then
	scripts/bench/digest.sh 2>&1 | tee bench-digest.out
fi
