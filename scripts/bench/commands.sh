#!/usr/bin/env bash
# commands.sh: signed and encrypted SHOW pt command mails end to end
# through `ccdir serve` on 127.0.0.1 (BenchmarkServeShow in
# cmd/ccdir/serve_bench_test.go): SMTP in → decrypt and verify → answer →
# reply signed, encrypted and queued, by 8 concurrent SMTP clients.
# Prints cmds/s, p50/p99/max latency of one SMTP transaction, and the
# peak Go heap and RSS after the first 1,000 and over the last 1,000 mails
# (flat memory: the two pairs match). Target: ≥ 300 cmds/s with p99 under
# 50 ms on a 2-core machine.
#
# Environment: N (mails, default 5000), CLIENTS (default 8), DELIVERY
# (sink: replies go out over SMTP to a loopback sink, as to an MTA — the
# default; maildir: the home's maildir), COUNT (runs, default 1),
# PROFILE=1 (also write cpu.pprof and mem.pprof and print the top of the
# CPU profile), OUT (results folder, default a new temp folder), BUDGET
# (seconds, default 110). The load average before and after is printed:
# other work on the machine skews the figures.
set -euo pipefail
cd "$(dirname "$0")/../.."

n=${N:-5000}
out=${OUT:-$(mktemp -d "${TMPDIR:-/tmp}/ccdir-bench-commands.XXXXXX")}
mkdir -p "$out"
echo "results in $out"
echo "load before: $(cut -d' ' -f1-3 /proc/loadavg 2>/dev/null || echo '?')"

go test -c -o "$out/ccdir.test" ./cmd/ccdir
args=(-test.run '^$' -test.bench '^BenchmarkServeShow$' -test.benchtime "${n}x" -test.count "${COUNT:-1}" -test.timeout 3m)
if [[ ${PROFILE:-0} != 0 ]]; then
	args+=(-test.cpuprofile "$out/cpu.pprof" -test.memprofile "$out/mem.pprof")
fi
(
	cd cmd/ccdir
	CCDIR_BENCH_SERVE_CLIENTS=${CLIENTS:-8} CCDIR_BENCH_SERVE_DELIVERY=${DELIVERY:-sink} \
		timeout --signal=INT --kill-after=10 "${BUDGET:-110}" "$out/ccdir.test" "${args[@]}"
) | tee "$out/commands.txt"
echo "load after: $(cut -d' ' -f1-3 /proc/loadavg 2>/dev/null || echo '?')"

if [[ ${PROFILE:-0} != 0 ]]; then
	echo "== CPU, cumulative, in the mail path"
	go tool pprof -top -cum -focus 'receiver\)\.receive' -nodecount 40 "$out/ccdir.test" "$out/cpu.pprof" 2>/dev/null | sed -n '6,50p'
fi
