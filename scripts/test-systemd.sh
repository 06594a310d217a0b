#!/usr/bin/env bash
# Checks every systemd unit of scripts/examples with `systemd-analyze
# verify` (when it is installed: it skips, saying so, otherwise): each
# .service, .timer and .socket, and ccdir-flush.service with the sendmail
# drop-in (ccdir-sendmail.conf) applied. A unit passes only when verify
# exits 0 and prints nothing (it reports unknown keys and bad values as
# warnings, with exit 0). The check first proves it can fail: a unit with
# a misspelled key and one with a relative ExecStart must be reported.
# /usr/local/bin/ccdir is replaced by a ccdir built here (verify wants an
# executable).
set -euo pipefail
cd "$(dirname "$0")/.."

say() { printf 'test-systemd: %s\n' "$*"; }
die() {
	printf 'test-systemd: FAIL: %s\n' "$*" >&2
	exit 1
}

if ! command -v systemd-analyze >/dev/null; then
	say "SKIP: systemd-analyze is not installed"
	exit 0
fi

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
go build -o "$work/ccdir" ./cmd/ccdir
mkdir "$work/units"

# verify UNIT-FILE...: 0 when systemd-analyze verify says nothing.
verify() {
	local out rc=0
	out=$(cd "$work/units" && timeout 60 systemd-analyze verify --man=no "$@" 2>&1) || rc=$?
	if [ "$rc" != 0 ] || [ -n "$out" ]; then
		printf '%s\n' "$out" >&2
		return 1
	fi
}

units=()
for f in scripts/examples/*.service scripts/examples/*.timer scripts/examples/*.socket; do
	[ -e "$f" ] || continue
	sed "s#/usr/local/bin/ccdir#$work/ccdir#g" "$f" >"$work/units/$(basename "$f")"
	units+=("$(basename "$f")")
done
((${#units[@]})) || die "no unit in scripts/examples"

# The drop-in, applied: the flush unit as it runs with sendmail: delivery.
cat "$work/units/ccdir-flush.service" >"$work/units/ccdir-flush-sendmail.service"
grep -v '^\[Service\]' scripts/examples/ccdir-sendmail.conf >>"$work/units/ccdir-flush-sendmail.service"
grep -q '^NoNewPrivileges=no' "$work/units/ccdir-flush-sendmail.service" || die "the sendmail drop-in does not turn NoNewPrivileges off"
units+=(ccdir-flush-sendmail.service)

# The check can fail.
sed 's/^ProtectSystem=/ProtectSytem=/' "$work/units/ccdir-serve.service" >"$work/units/broken-key.service"
sed 's#^ExecStart=.*#ExecStart=ccdir/serve#' "$work/units/ccdir-serve.service" >"$work/units/broken-exec.service"
for b in broken-key.service broken-exec.service; do
	if verify "$b" 2>/dev/null; then
		die "systemd-analyze verify passes $b: this check would not see a broken unit"
	fi
	rm "$work/units/$b"
done

for u in "${units[@]}"; do
	verify "$u" || die "systemd-analyze verify $u (scripts/examples)"
	say "ok: $u"
done
say "ok: ${#units[@]} units verified"
