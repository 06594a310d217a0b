#!/usr/bin/env bash
# gpg-baseline.sh N [BODY]: the shell-script way of sending a digest, for
# comparison with `ccdir digest send`: one
#   gpg --batch --sign --encrypt --armor -r KEY --local-user DIRKEY
# process per recipient over the same digest text, into files.
#
# Only the encryption loop is measured: building the MIME mail and
# delivering the files (sendmail, SMTP) are NOT done, so the real shell
# script would be slower still.
#
# N recipient keys (Ed25519/Cv25519, `gpg --quick-gen-key UID future-default
# default never`, one process each, not timed) go into a throw-away
# GNUPGHOME, with the directory key: dirkey-secret.asc next to BODY if the
# Go benchmark wrote one (the same key ccdir signs with), else a new one.
#
# BODY defaults to $CCDIR_BENCH_BODY_DIR/body-1000.txt (written by the Go
# benchmark when CCDIR_BENCH_BODY_DIR is set; made here if missing).
#
# Prints the mean, median and p95 wall time per recipient, the total, and
# the total extrapolated linearly to 10,000 recipients (same body), and a
# last line for scripts: RESULT n=… body_bytes=… total_s=… per_recipient_ms=… extrapolated_10000_s=…
# Per-recipient times and the encrypted files go to $GPG_OUT (default: a
# temp folder, removed at the end).
set -euo pipefail
cd "$(dirname "$0")/../.."

n=${1:?usage: gpg-baseline.sh N [BODY]}
bodydir=${CCDIR_BENCH_BODY_DIR:-${TMPDIR:-/tmp}/ccdir-bench}
body=${2:-$bodydir/body-1000.txt}
command -v gpg >/dev/null || { echo "gpg-baseline: gpg not found" >&2; exit 1; }

if [[ ! -f $body ]]; then
	echo "gpg-baseline: $body missing; writing it with the Go benchmark (1,000 contacts)" >&2
	mkdir -p "$(dirname "$body")"
	CCDIR_BENCH_BODY_DIR=$(dirname "$body") go test -run '^$' -bench 'DigestSend/^recipients=1000$/^attach=none$' \
		-benchtime 1x ./pkg/digest >/dev/null
fi

work=$(mktemp -d "${TMPDIR:-/tmp}/ccdir-gpg-baseline.XXXXXX")
export GNUPGHOME=$work/gnupg
mkdir -m 700 "$GNUPGHOME"
out=${GPG_OUT:-$work/out}
mkdir -p "$out"
cleanup() {
	gpgconf --kill gpg-agent 2>/dev/null || true
	rm -rf "$work"
}
trap cleanup EXIT

g() { gpg --batch --quiet --no-tty --pinentry-mode loopback --passphrase '' "$@"; }

# The directory key.
dirsec=$(dirname "$body")/dirkey-secret.asc
if [[ -f $dirsec ]]; then
	g --import "$dirsec" 2>/dev/null
else
	g --quick-gen-key "Bench Directory <directory@ccdir.example>" future-default default never 2>/dev/null
fi
dirkey=$(gpg --batch --with-colons --list-secret-keys 2>/dev/null | awk -F: '$1 == "fpr" { print $10; exit }')

# The recipients' keys (not timed).
t0=$EPOCHREALTIME
for ((i = 0; i < n; i++)); do
	g --quick-gen-key "Recipient $i <r$(printf %05d "$i")@bench.example>" future-default default never 2>/dev/null
done
mapfile -t rcpts < <(gpg --batch --with-colons --list-keys 2>/dev/null | awk -F: -v dir="$dirkey" '
	$1 == "pub" { want = 1; next }
	$1 == "fpr" && want { want = 0; if ($10 != dir) print $10 }')
if ((${#rcpts[@]} != n)); then
	echo "gpg-baseline: made ${#rcpts[@]} keys, want $n" >&2
	exit 1
fi
keygen=$(awk -v a="$t0" -v b="$EPOCHREALTIME" 'BEGIN { printf "%.1f", b - a }')
bytes=$(wc -c <"$body")
echo "gpg $(gpg --version | head -1 | awk '{print $3}'): $n recipient keys (ed25519/cv25519) made in ${keygen}s (not timed); body $bytes bytes"

# The timed loop: one gpg process per recipient.
times=$out/times.txt
: >"$times"
start=$EPOCHREALTIME
for ((i = 0; i < n; i++)); do
	a=$EPOCHREALTIME
	gpg --batch --quiet --no-tty --yes --trust-model always --sign --encrypt --armor \
		-r "${rcpts[i]}" --local-user "$dirkey" -o "$out/$i.asc" "$body"
	b=$EPOCHREALTIME
	echo "${rcpts[i]} $a $b" >>"$times"
done
end=$EPOCHREALTIME

awk '{ printf "%.3f\n", ($3 - $2) * 1000 }' "$times" | sort -n | awk -v n="$n" -v start="$start" -v end="$end" -v bytes="$bytes" '
	{ d[NR] = $1 }
	END {
		total = end - start
		i95 = int(n * 0.95 + 0.5); if (i95 < 1) i95 = 1
		med = d[int((n + 1) / 2)]; p95 = d[i95]
		printf "gpg --sign --encrypt, one process per recipient: %d recipients in %.2f s\n", n, total
		printf "  per recipient: mean %.1f ms, median %.1f ms, p95 %.1f ms\n", total * 1000 / n, med, p95
		printf "  extrapolated linearly to 10,000 recipients (same body): %.0f s\n", total / n * 10000
		printf "RESULT n=%d body_bytes=%d total_s=%.3f per_recipient_ms=%.3f extrapolated_10000_s=%.1f\n",
			n, bytes, total, total * 1000 / n, total / n * 10000
	}'
