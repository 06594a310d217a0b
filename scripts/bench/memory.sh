#!/usr/bin/env bash
# memory.sh: 64 unsigned messages of almost 10 MiB sent at once to
# `ccdir serve` on 127.0.0.1, each from its own source address
# (127.0.0.2–127.0.0.65, so no per-address limit applies)
# (BenchmarkServeBigUnsigned in cmd/ccdir/serve_memory_bench_test.go).
# Prints the peak RSS of the process (serve and the clients), the
# messages checked and refused as unsigned, and those deferred with
# 452 4.3.1 for want of room in serve.memory_budget. Target: peak RSS
# under 300 MB (the benchmark fails above it).
#
# Environment: N (waves, default 1), CLIENTS (default 64), BUDGET
# (serve.memory_budget in bytes; default that of ccdir), OUT (results
# folder, default a new temp folder).
set -euo pipefail
cd "$(dirname "$0")/../.."

out=${OUT:-$(mktemp -d "${TMPDIR:-/tmp}/ccdir-bench-memory.XXXXXX")}
mkdir -p "$out"
echo "results in $out"
go test -c -o "$out/ccdir.test" ./cmd/ccdir
(
	cd cmd/ccdir
	if [[ -n ${BUDGET:-} ]]; then export CCDIR_SERVE_MEMORY_BUDGET=$BUDGET; fi
	CCDIR_BENCH_BIG_CLIENTS=${CLIENTS:-64} "$out/ccdir.test" -test.run '^$' \
		-test.bench '^BenchmarkServeBigUnsigned$' -test.benchtime "${N:-1}x" -test.timeout 10m
) | tee "$out/memory.txt"
