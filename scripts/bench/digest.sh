#!/usr/bin/env bash
# digest.sh: time and peak memory of sending one digest, and the same
# encryption done one `gpg --sign --encrypt` process per recipient
# (gpg-baseline.sh) over the same digest text, with a summary table.
#
# Two kinds of run (see pkg/digest/bench_test.go):
#
#   fanout-N   issue 3's target: a directory the size of TLD-OPS (250
#              ccTLDs × 3 contacts = 750 contacts with keys, a ≈290 KB
#              text body) to N = 1,000 or 10,000 recipients, each with an
#              Ed25519/Cv25519 key of their own (BenchmarkDigestFanout:
#              content, keys parsed once, sign and seal once, one copy per
#              recipient, queue, deliver over SMTP with 8 connections to
#              go-smtp's sink on 127.0.0.1, which offers CHUNKING).
#              "-attach" adds the vCard, JSON and key-bundle attachments.
#   N          Job.Send end to end where every recipient is a contact, so
#              the body grows with N (≈390 bytes per contact):
#              BenchmarkDigestSend. Not in the default list.
#
# Each Go benchmark runs in its own process (the test binary, compiled
# once), so that its peak RSS is its own: peak-rss-MB is VmHWM during the
# send (reset after the fixture is built), and "process max RSS" comes
# from /usr/bin/time -v when present (fixture included).
#
# Environment: SIZES (default "fanout-1000 fanout-10000 fanout-1000-attach
# fanout-10000-attach"; also 1000, 10000, 1000-attach), GPG_N (recipients
# of the gpg run over the fan-out body, default 300; its per-recipient time
# is scaled to each N), OUT (results folder, default a new temp folder),
# BUDGET (seconds for the whole run, default 570: a step that would run
# past it is killed or skipped and shows "-" in the table). On a quiet
# 2-core machine it takes about 3 minutes (the first run also generates
# 10,000 test keys, cached in the temp folder).
set -euo pipefail
cd "$(dirname "$0")/../.."

sizes=${SIZES:-fanout-1000 fanout-10000 fanout-1000-attach fanout-10000-attach}
gpg_n=${GPG_N:-300}
out=${OUT:-$(mktemp -d "${TMPDIR:-/tmp}/ccdir-bench-digest.XXXXXX")}
mkdir -p "$out"
export CCDIR_BENCH_BODY_DIR=$out
echo "results in $out"
load() { cut -d' ' -f1-3 /proc/loadavg 2>/dev/null || echo "?"; }
load_start=$(load)
deadline=$((SECONDS + ${BUDGET:-570}))
# bounded CMD...: runs CMD with what is left of the budget.
bounded() {
	local left=$((deadline - SECONDS))
	if ((left < 15)); then
		echo "(skipped: time budget used up)" >&2
		return 0
	fi
	timeout --signal=INT --kill-after=10 "$left" "$@" || echo "(exit $?: failed or over the time budget)" >&2
}

go test -c -o "$out/digest.test" ./pkg/digest

timer=()
if [[ -x /usr/bin/time ]] && /usr/bin/time -v true 2>/dev/null; then
	timer=(/usr/bin/time -v -o)
fi

# bench NAME PATTERN: runs one sub-benchmark in its own process.
bench() {
	local name=$1 pattern=$2
	echo "== ccdir $name"
	local cmd=("$out/digest.test" -test.run '^$' -test.bench "$pattern" -test.benchtime 1x -test.timeout 9m)
	if ((${#timer[@]})); then
		(cd pkg/digest && bounded "${timer[@]}" "$out/$name.time" "${cmd[@]}") | tee "$out/$name.txt"
	else
		(cd pkg/digest && bounded "${cmd[@]}") | tee "$out/$name.txt"
	fi
}

pattern() {
	case $1 in
	fanout-1000 | fanout-10000) echo "DigestFanout/^recipients=${1#fanout-}\$/^attach=none\$" ;;
	fanout-1000-attach | fanout-10000-attach) local n=${1#fanout-}; echo "DigestFanout/^recipients=${n%-attach}\$/^attach=default\$" ;;
	1000 | 10000) echo "DigestSend/^recipients=$1\$/^attach=none\$" ;;
	1000-attach) echo 'DigestSend/^recipients=1000$/^attach=default$' ;;
	*) return 1 ;;
	esac
}
for s in $sizes; do
	pattern "$s" >/dev/null || { echo "unknown size $s (want fanout-1000, fanout-10000, fanout-1000-attach, fanout-10000-attach, 1000, 10000, 1000-attach)" >&2; exit 2; }
done
first=1
for s in $sizes; do
	bench "$s" "$(pattern "$s")"
	# The gpg baseline right after the first run, over the body it wrote.
	if ((first)) && ((gpg_n > 0)); then
		first=0
		body=$out/body-750.txt
		[[ $s == fanout-* ]] || body=$out/body-${s%-attach}.txt
		if [[ -f $body ]]; then
			echo "== gpg baseline, $gpg_n recipients, body $(basename "$body")"
			bounded scripts/bench/gpg-baseline.sh "$gpg_n" "$body" | tee "$out/gpg.txt"
		fi
	fi
done

# metric FILE UNIT: a benchmark metric by its unit.
metric() {
	[[ -f $1 ]] || { echo -; return; }
	awk -v unit="$2" '/^BenchmarkDigest/ { for (i = 3; i < NF; i++) if ($(i + 1) == unit) { print $i; exit } }' "$1"
}
maxrss() {
	[[ -f $out/$1.time ]] || { echo -; return; }
	awk -F: '/Maximum resident set size/ { printf "%.0f", $2 / 1024 }' "$out/$1.time"
}
gpgval() {
	[[ -f $1 ]] || return 0
	sed -n 's/^RESULT .*'"$2"'=\([0-9.]*\).*/\1/p' "$1"
}

per_ms=$(gpgval "$out/gpg.txt" per_recipient_ms)
gbody=$(gpgval "$out/gpg.txt" body_bytes)
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (a + 0 > 0 && b + 0 > 0) printf "%.1f×", b / a; else print "-" }'; }
recipients() { local n=${1#fanout-}; echo "${n%-attach}"; }

echo
echo "== summary ($(nproc) cores; ccdir = from rendering to the last message accepted by the SMTP sink; gpg = encryption loop only, no MIME, no delivery)"
printf '%-22s %9s %9s %9s %9s %9s %10s %11s %12s\n' run body-KB mail-MB ccdir-s msgs/s gpg-s speed-up rss-send-MB rss-proc-MB
for s in $sizes; do
	f=$out/$s.txt
	cs=$(metric "$f" s/op)
	gs=-
	# gpg's time per recipient (measured over the fan-out body) applies
	# to the fan-out runs without attachments only.
	if [[ $s == fanout-* && $s != *-attach && -n $per_ms ]]; then
		gs=$(awk -v ms="$per_ms" -v n="$(recipients "$s")" 'BEGIN { printf "%.1f", ms * n / 1000 }')
	fi
	printf '%-22s %9s %9s %9s %9s %9s %10s %11s %12s\n' "$s" "$(metric "$f" body-KB)" "$(metric "$f" mail-MB/op)" "$cs" \
		"$(metric "$f" msgs/s)" "$gs" "$(ratio "$cs" "$gs")" "$(metric "$f" peak-rss-MB)" "$(maxrss "$s")"
done
if [[ -n $per_ms ]]; then
	echo "gpg: ${per_ms} ms per recipient over a ${gbody}-byte body ($gpg_n recipients measured), scaled linearly to each run's recipients"
fi
echo "load average (1/5/15 min) at start: $load_start, at end: $(load) — other work on the machine skews the times"
echo "targets (issue 3): 10,000 in < 8 s; >= 20× faster than gpg; peak memory < 300 MB and flat"
