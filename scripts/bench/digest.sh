#!/usr/bin/env bash
# digest.sh: time and peak memory of `ccdir digest send` (Job.Send: record,
# sign once, encrypt and queue per recipient, deliver over SMTP with 4
# connections to an in-process loopback sink) to 1,000 and 10,000
# contacts, each with an Ed25519/Cv25519 key of their own; then the same
# encryption done one `gpg --sign --encrypt` process per recipient
# (gpg-baseline.sh), and a summary table.
#
# Each Go benchmark runs in its own process (the test binary, compiled
# once), so that its peak RSS is its own: peak-rss-MB is VmHWM during Send
# (reset after the fixture is built), and "process max RSS" comes from
# /usr/bin/time -v when present (fixture included).
#
# Every recipient is a contact and the digest lists every contact, so the
# body grows with the recipients (≈360 bytes of text per contact): the
# 10,000 run sends a ≈3 MB body to each of 10,000 recipients.
#
# Environment: SIZES (default "1000 10000 1000-attach"), GPG_N (default
# 1000), GPG_SAMPLE_10K (recipients of the gpg run over the 10,000-contact
# body, default 50; 0 skips it), OUT (results folder, default a new temp
# folder), BUDGET (seconds for the whole run, default 570: a step that
# would run past it is killed or skipped and shows "-" in the table). On a
# quiet 2-core machine it takes about 5 minutes.
set -euo pipefail
cd "$(dirname "$0")/../.."

sizes=${SIZES:-1000 10000 1000-attach}
gpg_n=${GPG_N:-1000}
gpg_sample=${GPG_SAMPLE_10K:-50}
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

for s in $sizes; do
	case $s in
	1000 | 10000 | 1000-attach) ;;
	*) echo "unknown size $s (want 1000, 10000, 1000-attach)" >&2; exit 2 ;;
	esac
done
has() { [[ " $sizes " == *" $1 "* ]]; }
# The most telling runs first, the attachments last.
if has 1000; then bench 1000 'DigestSend/^recipients=1000$/^attach=none$'; fi
if has 10000; then bench 10000 'DigestSend/^recipients=10000$/^attach=none$'; fi
if ((gpg_n > 0)) && [[ -f $out/body-1000.txt ]]; then
	echo "== gpg baseline, $gpg_n recipients, 1,000-contact body"
	bounded scripts/bench/gpg-baseline.sh "$gpg_n" "$out/body-1000.txt" | tee "$out/gpg-1000.txt"
fi
if ((gpg_sample > 0)) && [[ -f $out/body-10000.txt ]]; then
	echo "== gpg baseline, $gpg_sample recipients, 10,000-contact body (per-recipient cost at that size)"
	bounded scripts/bench/gpg-baseline.sh "$gpg_sample" "$out/body-10000.txt" | tee "$out/gpg-10000.txt"
fi
if has 1000-attach; then bench 1000-attach 'DigestSend/^recipients=1000$/^attach=default$'; fi

# metric FILE UNIT: a benchmark metric by its unit.
metric() {
	[[ -f $1 ]] || { echo -; return; }
	awk -v unit="$2" '/^BenchmarkDigestSend/ { for (i = 3; i < NF; i++) if ($(i + 1) == unit) { print $i; exit } }' "$1"
}
maxrss() {
	[[ -f $out/$1.time ]] || { echo -; return; }
	awk -F: '/Maximum resident set size/ { printf "%.0f", $2 / 1024 }' "$out/$1.time"
}
gpgval() {
	[[ -f $1 ]] || return 0
	sed -n 's/^RESULT .*'"$2"'=\([0-9.]*\).*/\1/p' "$1"
}

g1=$(gpgval "$out/gpg-1000.txt" total_s)
g1x=$(gpgval "$out/gpg-1000.txt" extrapolated_10000_s)
g10=$(gpgval "$out/gpg-10000.txt" extrapolated_10000_s)
g1n=$(gpgval "$out/gpg-1000.txt" n)
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (a + 0 > 0 && b + 0 > 0) printf "%.1f×", b / a; else print "-" }'; }

echo
echo "== summary ($(nproc) cores; ccdir = Job.Send end to end into the SMTP sink; gpg = encryption loop only, no MIME, no delivery)"
printf '%-22s %9s %9s %9s %12s %9s %10s %11s %12s\n' run body-KB mail-MB ccdir-s msgs/s gpg-s speed-up rss-Send-MB rss-proc-MB
for s in $sizes; do
	f=$out/$s.txt
	cs=$(metric "$f" s/op)
	case $s in
	1000)
		gs=$g1
		[[ $g1n == 1000 ]] || gs=$(awk -v x="$g1" -v n="$g1n" 'BEGIN { printf "%.1f", x / n * 1000 }')
		;;
	10000) gs=${g10:-$g1x} ;;
	*) gs=- ;;
	esac
	printf '%-22s %9s %9s %9s %12s %9s %10s %11s %12s\n' "$s" "$(metric "$f" body-KB)" "$(metric "$f" mail-MB/op)" "$cs" \
		"$(metric "$f" msgs/s)" "${gs:--}" "$(ratio "$cs" "$gs")" "$(metric "$f" peak-rss-MB)" "$(maxrss "$s")"
done
if [[ -n $g1x ]]; then
	echo "gpg at 10,000 extrapolated linearly from $g1n recipients over the 1,000-contact body: ${g1x} s"
fi
if [[ -n $g10 ]]; then
	echo "gpg at 10,000 extrapolated linearly from $gpg_sample recipients over the 10,000-contact body: ${g10} s (used above)"
fi
echo "load average (1/5/15 min) at start: $load_start, at end: $(load) — other work on the machine skews the times"
echo "targets (issue 3): 10,000 in < 8 s; >= 20× faster than gpg; peak memory < 300 MB and flat"
