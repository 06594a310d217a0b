#!/usr/bin/env bash
# Tests the replication recipe of docs/replication.md for real: Litestream
# (v0.5.18, installed into a cache folder when missing) replicates the
# directory's database continuously to a file replica on this machine,
# standing for the other host; `ccdir backup --keys-only` carries keys/ and
# config.yaml there, encrypted to the operator's key, after init and after
# every rekey. Then "the other host" restores the database with
# `litestream restore` and the home with `ccdir restore --db`, and
# `ccdir verify --head` there must give the head of the last digest the
# primary sent. A keys backup taken before the rekey must be refused.
#
# Bounded: every wait has a deadline (the install 15 min, the replica
# 60 s); progress is printed. Needs go, gpg and python3 (scripts/deps.sh
# installs them).
set -euo pipefail
cd "$(dirname "$0")/.."

LITESTREAM_VERSION=v0.5.18
start=$SECONDS
step() { printf 'test-litestream: [%3ds] %s\n' "$((SECONDS - start))" "$*"; }
fail() {
	printf 'test-litestream: FAIL: %s\n' "$*" >&2
	exit 1
}

cache=${XDG_CACHE_HOME:-$HOME/.cache}/ccdir/litestream-$LITESTREAM_VERSION
litestream=$cache/litestream
if [ ! -x "$litestream" ]; then
	step "installing litestream $LITESTREAM_VERSION into $cache (a few minutes, once)"
	mkdir -p "$cache"
	GOBIN=$cache GOTOOLCHAIN=local timeout 900 \
		go install "github.com/benbjohnson/litestream/cmd/litestream@$LITESTREAM_VERSION"
fi
"$litestream" version | grep -qx "$LITESTREAM_VERSION" || fail "$litestream is not $LITESTREAM_VERSION"

tmp=$(mktemp -d)
lspid=
cleanup() {
	if [ -n "$lspid" ]; then
		kill "$lspid" 2>/dev/null || true
		wait "$lspid" 2>/dev/null || true
	fi
	gpgconf --homedir "$tmp/gnupg" --kill gpg-agent 2>/dev/null || true
	rm -rf "$tmp"
}
trap cleanup EXIT

step "building ccdir"
mkdir -p "$tmp/bin"
go build -o "$tmp/bin/ccdir" ./cmd/ccdir
export PATH=$tmp/bin:$PATH
primary=$tmp/primary    # the directory's host
replica=$tmp/replica    # what reaches the other host: db/ (Litestream) and keys.ccdir
other=$tmp/other        # the home made on the other host
mkdir -p "$replica"

step "the operator's key (gpg), the directory (ccdir init)"
export GNUPGHOME=$tmp/gnupg
mkdir -m 0700 "$GNUPGHOME"
printf 'operator secret\n' >"$tmp/ops.pass"
printf 'directory secret\n' >"$tmp/dir.pass"
chmod 0600 "$tmp/ops.pass" "$tmp/dir.pass"
gpg --batch --quiet --pinentry-mode loopback --passphrase-file "$tmp/ops.pass" \
	--quick-gen-key 'TLD-OPS Secretariat <ops@secretariat.example>' future-default default 1y 2>/dev/null
gpg --batch --armor --export ops@secretariat.example >"$tmp/ops.asc"
# The operator's secret key is off the primary: on the other host (or
# offline), to read the keys backup there.
gpg --batch --pinentry-mode loopback --passphrase-file "$tmp/ops.pass" --armor \
	--export-secret-keys ops@secretariat.example >"$tmp/ops.sec.asc"
chmod 0600 "$tmp/ops.sec.asc"
gpg --batch --quiet --passphrase '' --quick-gen-key 'Ana Silva <ana@dns.pt>' future-default default 1y 2>/dev/null
gpg --batch --armor --export ana@dns.pt >"$tmp/ana.asc"

export CCDIR_HOME=$primary CCDIR_PASSPHRASE_FILE=$tmp/dir.pass
ccdir init --name 'TLD-OPS directory' --address ccdir@tldops.example \
	--operator-email ops@secretariat.example --operator-key "$tmp/ops.asc" >/dev/null

step "litestream replicate (file replica: the other host)"
cat >"$tmp/litestream.yml" <<EOF
dbs:
  - path: $primary/directory.db
    replica:
      type: file
      path: $replica/db
EOF
"$litestream" replicate -config "$tmp/litestream.yml" >"$tmp/litestream.log" 2>&1 &
lspid=$!
# After init: the keys and config.yaml, encrypted to the operator's key.
ccdir backup --keys-only -o "$replica/keys.ccdir" >/dev/null

step "changes, a digest, a rekey (then a new keys backup), more changes, the last digest"
ccdir member add pt --org DNS.PT >/dev/null
ccdir contact add pt --name 'Ana Silva' --email ana@dns.pt --phone '+351 21 234 5678' --key "$tmp/ana.asc" >/dev/null
ccdir digest send >/dev/null
cp "$replica/keys.ccdir" "$tmp/keys-before-rekey.ccdir"
ccdir rekey >/dev/null
ccdir backup --keys-only -o "$replica/keys.ccdir" >/dev/null # after every rekey
ccdir member add es --org Red.es >/dev/null
ccdir digest send --force >/dev/null
# json FIELD...: the fields of the JSON object (or of the first of a list)
# on stdin, joined with ":".
json() { python3 -c 'import json,sys; d=json.load(sys.stdin); d=d[0] if isinstance(d, list) else d; print(":".join(str(d[k]) for k in sys.argv[1:]))' "$@"; }
last=$(ccdir digest status --json | json serial head) # the latest digest first
[ -n "$last" ] || fail "no digest in ccdir digest status --json"
ccdir verify --head "$last" >/dev/null || fail "the primary does not verify at the last digest's head $last"
step "the last digest's head: $last"

step "waiting for the replica to reach it (at most 60 s)"
deadline=$((SECONDS + 60))
while :; do
	rm -rf "$tmp/probe" "$tmp/probe.db"*
	if "$litestream" restore -o "$tmp/probe.db" "file://$replica/db" >/dev/null 2>&1 &&
		ccdir restore "$replica/keys.ccdir" --home "$tmp/probe" --db "$tmp/probe.db" \
			--secret-key "$tmp/ops.sec.asc" --passphrase-file "$tmp/ops.pass" >/dev/null 2>&1 &&
		[ "$(ccdir --home "$tmp/probe" verify --json | json serial head)" = "$last" ]; then
		break
	fi
	[ $SECONDS -lt $deadline ] || { cat "$tmp/litestream.log" >&2; fail "the replica did not reach serial ${last%%:*} in 60 s"; }
	sleep 1
done
kill "$lspid"
wait "$lspid" 2>/dev/null || true
lspid=

step "the other host: litestream restore, then ccdir restore --db"
"$litestream" restore -o "$tmp/restored.db" "file://$replica/db"
# A keys backup from before the rekey does not fit the database after it.
if out=$(ccdir restore "$tmp/keys-before-rekey.ccdir" --home "$other" --db "$tmp/restored.db" \
	--secret-key "$tmp/ops.sec.asc" --passphrase-file "$tmp/ops.pass" 2>&1); then
	fail "a keys backup from before the rekey was restored"
fi
grep -q 'a rekey came after the keys backup' <<<"$out" || fail "unexpected refusal: $out"
[ ! -e "$other" ] || fail "a refused restore left $other"
ccdir restore "$replica/keys.ccdir" --home "$other" --db "$tmp/restored.db" \
	--secret-key "$tmp/ops.sec.asc" --passphrase-file "$tmp/ops.pass"
ccdir --home "$other" verify --head "$last" | head -1
got=$(ccdir --home "$other" verify --json | json serial head)
[ "$got" = "$last" ] || fail "the other host verifies at $got, the last digest was at $last"
# The restored home works: it signs with the key of the rekey.
ccdir --home "$other" member add de --org DENIC >/dev/null
ccdir --home "$other" verify >/dev/null
step "ok: the other host verifies at the last digest's head $last"
