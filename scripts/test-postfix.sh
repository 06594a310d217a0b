#!/usr/bin/env bash
# A real DSN made by Postfix marks ccdir's message bounced.
#
# Runs a PRIVATE Postfix instance (its own config, queue and data
# directories under a temporary folder; smtpd on a free port of
# 127.0.0.1 only, inet_protocols = ipv4, no chroot), never the system's
# instance nor port 25, and removes it at the end. ccdir sends a digest
# through it (delivery.url smtp://127.0.0.1:PORT) to an unknown local user
# of the instance's own domain; local(8) bounces it; bounce(8) mails the
# DSN to the tagged bounce address, which the transport map routes to
# `ccdir process` through pipe(8); the outbox message must become
# `bounced` with Postfix's diagnostic. It FAILS when the DSN is not
# matched, and skips only when it cannot run at all (not root).
#
# Installs postfix from Debian packages when it is missing, with the
# debconf answer "No configuration" (nothing of the system's is set up
# or started). pipe(8) refuses user=root, so the ccdir home belongs to an
# unprivileged user, $PIPE_USER (default ccdirtest), made when missing.
#
# Built for reuse (the operations issue adds LMTP and list posts): the
# pf_* functions start, feed and stop an instance; pf_write_config is the
# one writer of its main.cf, master.cf and transport map; pf_service adds
# a master.cf line.
#
# Environment: PIPE_USER, TIMEOUT (seconds to wait for the bounce,
# default 60), KEEP=1 keeps the temporary folder.
set -euo pipefail
cd "$(dirname "$0")/.."
repo=$(pwd)

PIPE_USER=${PIPE_USER:-ccdirtest}
TIMEOUT=${TIMEOUT:-60}
MAIL_DOMAIN=mx.ccdir.test # the instance's local domain (mydestination)
DIR_DOMAIN=dir.ccdir.test # the directory's domain: routed to ccdir process

say() { printf 'test-postfix: %s\n' "$*"; }
die() {
	printf 'test-postfix: FAIL: %s\n' "$*" >&2
	exit 1
}

# need_root re-runs the script with sudo when that needs no password;
# without root it cannot run (master(8) and pipe(8) need it): skip.
need_root() {
	[ "$(id -u)" = 0 ] && return 0
	if command -v sudo >/dev/null && sudo -n true 2>/dev/null; then
		exec sudo -n --preserve-env=PATH,GOPATH,GOCACHE,GOMODCACHE,TIMEOUT,KEEP,PIPE_USER "$0" "$@"
	fi
	say "SKIP: not root and no password-less sudo: a private Postfix instance cannot run"
	exit 0
}

# need_postfix installs postfix from Debian packages when missing.
need_postfix() {
	command -v postfix >/dev/null && [ -x /usr/lib/postfix/sbin/master ] && return 0
	command -v apt-get >/dev/null || die "postfix is missing and there is no apt-get to install it"
	say "installing postfix (Debian package, \"No configuration\")"
	echo "postfix postfix/main_mailer_type select No configuration" | debconf-set-selections
	export DEBIAN_FRONTEND=noninteractive
	timeout 300 apt-get install -y -q postfix >/dev/null ||
		{ timeout 120 apt-get update -q >/dev/null && timeout 300 apt-get install -y -q postfix >/dev/null; } ||
		die "apt-get install postfix failed"
}

# need_pipe_user makes the unprivileged user pipe(8) runs ccdir as.
need_pipe_user() {
	id -u "$PIPE_USER" >/dev/null 2>&1 && return 0
	say "adding user $PIPE_USER"
	useradd --system --no-create-home --home-dir /nonexistent --shell /usr/sbin/nologin "$PIPE_USER"
}

# free_port prints a TCP port of 127.0.0.1 nobody listens on.
free_port() {
	local p i
	for i in $(seq 1 50); do
		p=$((20000 + RANDOM % 20000))
		if ! (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null; then
			echo "$p"
			return 0
		fi
	done
	die "no free port"
}

# pf_service LINE... appends lines to the instance's master.cf (before
# pf_write_config writes it): e.g. an lmtp listener or another pipe.
PF_SERVICES=()
pf_service() { PF_SERVICES+=("$@"); }

# pf_transport DOMAIN NEXTHOP appends a transport map entry.
PF_TRANSPORT=()
pf_transport() { PF_TRANSPORT+=("$1 $2"); }

# pf_write_config writes main.cf, master.cf and the transport map of the
# instance in $PF (PF_PORT: smtpd's port; PF_MAIN_EXTRA: more main.cf
# lines).
pf_write_config() {
	mkdir -p "$PF/etc" "$PF/queue" "$PF/data"
	chown postfix "$PF/data"
	cat >"$PF/etc/main.cf" <<EOF
compatibility_level = 3.6
config_directory = $PF/etc
queue_directory = $PF/queue
data_directory = $PF/data
meta_directory = /etc/postfix
daemon_directory = /usr/lib/postfix/sbin
shlib_directory = /usr/lib/postfix
command_directory = /usr/sbin
mail_owner = postfix
setgid_group = postdrop
maillog_file = $PF/maillog
maillog_file_prefixes = $PF
inet_interfaces = loopback-only
inet_protocols = ipv4
mynetworks = 127.0.0.0/8
myhostname = $MAIL_DOMAIN
mydomain = ccdir.test
myorigin = $MAIL_DOMAIN
mydestination = $MAIL_DOMAIN
relay_domains =
relayhost =
# Accept any local part at RCPT, so that local(8) makes the bounce.
local_recipient_maps =
alias_maps =
alias_database =
biff = no
smtputf8_enable = no
transport_maps = texthash:$PF/etc/transport
recipient_delimiter = +
default_destination_concurrency_limit = 2
# Nothing leaves the machine: unknown domains fail at once.
default_transport = error:this private test instance delivers nowhere else
${PF_MAIN_EXTRA:-}
EOF
	{
		echo "# service type private unpriv chroot wakeup maxproc command"
		echo "127.0.0.1:$PF_PORT inet n - n - - smtpd"
		cat <<'EOF'
pickup    unix  n - n 60 1 pickup
cleanup   unix  n - n -  0 cleanup
qmgr      unix  n - n 300 1 qmgr
rewrite   unix  - - n -  - trivial-rewrite
bounce    unix  - - n -  0 bounce
defer     unix  - - n -  0 bounce
trace     unix  - - n -  0 bounce
verify    unix  - - n -  1 verify
flush     unix  n - n 1000? 0 flush
proxymap  unix  - - n -  - proxymap
smtp      unix  - - n -  - smtp
relay     unix  - - n -  - smtp
showq     unix  n - n -  - showq
error     unix  - - n -  - error
retry     unix  - - n -  - error
discard   unix  - - n -  - discard
local     unix  - n n -  - local
anvil     unix  - - n -  1 anvil
scache    unix  - - n -  1 scache
postlog   unix-dgram n - n - 1 postlogd
EOF
		local s
		for s in "${PF_SERVICES[@]}"; do echo "$s"; done
	} >"$PF/etc/master.cf"
	local t
	for t in "${PF_TRANSPORT[@]}"; do echo "$t"; done >"$PF/etc/transport"
}

# pf_cmd runs a Postfix command (bounded) so that its errors reach stderr:
# Postfix writes them there only when it is a terminal, so give it one.
pf_cmd() { timeout 30 script -qefc "$(printf '%q ' "$@")" /dev/null; }

# pf_start checks and starts the instance.
pf_start() {
	pf_cmd postfix -c "$PF/etc" check || die "postfix check of the private instance"
	pf_cmd postfix -c "$PF/etc" start || { pf_log; die "postfix start"; }
	PF_STARTED=1
	local i
	for i in $(seq 1 50); do
		(exec 3<>"/dev/tcp/127.0.0.1/$PF_PORT") 2>/dev/null && return 0
		sleep 0.2
	done
	pf_log
	die "smtpd does not listen on 127.0.0.1:$PF_PORT"
}

# pf_stop stops the instance (quickly: the queue is thrown away).
pf_stop() {
	[ -n "${PF_STARTED:-}" ] || return 0
	timeout 20 postfix -c "$PF/etc" stop >/dev/null 2>&1 ||
		timeout 20 postfix -c "$PF/etc" abort >/dev/null 2>&1 || true
	PF_STARTED=
}

# pf_log prints the end of the instance's log.
pf_log() { [ -f "$PF/maillog" ] && tail -n 40 "$PF/maillog" >&2 || true; }

# pf_queue prints the instance's queue.
pf_queue() { timeout 10 postqueue -c "$PF/etc" -p 2>&1 || true; }

cleanup() {
	local rc=$?
	pf_stop
	if [ -n "${KEEP:-}" ]; then
		say "kept $WORK"
	else
		rm -rf "$WORK"
	fi
	exit "$rc"
}

# wait_bounced N waits (at most $TIMEOUT seconds) until N outbox messages
# are bounced; their list is left in $out.
wait_bounced() {
	say "waiting (at most ${TIMEOUT}s) for $1 bounces from Postfix to reach ccdir process"
	local deadline=$((SECONDS + TIMEOUT)) n
	while :; do
		out=$(cc outbox list --status bounced)
		n=$(grep -c " bounced " <<<"$out" || true)
		[ "$n" -ge "$1" ] && return 0
		if [ "$SECONDS" -ge "$deadline" ]; then
			cc outbox list >&2 || true
			pf_queue >&2
			pf_log
			die "$n of $1 messages marked bounced after ${TIMEOUT}s"
		fi
		sleep 1
	done
}

# as_pipe_user runs a command as $PIPE_USER (who owns the ccdir home).
as_pipe_user() { runuser -u "$PIPE_USER" -- "$@"; }

# cc runs ccdir on the test home as $PIPE_USER.
cc() { as_pipe_user env CCDIR_DELIVERY_URL="smtp://127.0.0.1:$PF_PORT?starttls=off" "$WORK/bin/ccdir" --home "$HOME_DIR" "$@"; }

main() {
	need_root "$@"
	need_postfix
	need_pipe_user
	local start=$SECONDS

	WORK=$(mktemp -d /tmp/ccdir-postfix.XXXXXX)
	trap cleanup EXIT
	trap 'exit 130' INT TERM
	chmod 755 "$WORK"
	PF=$WORK/postfix
	HOME_DIR=$WORK/ccdir/home # init writes next to it: $WORK/ccdir is the pipe user's
	PF_PORT=$(free_port)

	say "building ccdir"
	mkdir -p "$WORK/bin"
	go build -o "$WORK/bin/ccdir" ./cmd/ccdir
	chmod 755 "$WORK/bin/ccdir"

	say "ccdir home $HOME_DIR (owner $PIPE_USER)"
	mkdir -p "$WORK/ccdir" "$WORK/gnupg"
	chown "$PIPE_USER" "$WORK/ccdir"
	chmod 700 "$WORK/gnupg"
	cc init --name "Postfix test" --address "ccdir@$DIR_DOMAIN" --no-passphrase >/dev/null
	local who="no-such-user@$MAIL_DOMAIN"
	timeout 60 gpg --homedir "$WORK/gnupg" --batch --quiet --passphrase '' \
		--quick-gen-key "Nobody <$who>" future-default default 1y 2>/dev/null
	gpg --homedir "$WORK/gnupg" --armor --export "$who" >"$WORK/key.asc"
	chmod 644 "$WORK/key.asc"

	say "private Postfix on 127.0.0.1:$PF_PORT in $PF"
	pf_service "ccdir unix - n n - - pipe flags=q null_sender= user=$PIPE_USER argv=$WORK/bin/ccdir --home $HOME_DIR process --from \${sender} --to \${recipient}"
	pf_transport "$DIR_DOMAIN" "ccdir:"
	pf_write_config
	pf_start

	say "ccdir sends to the unknown user $who through it"
	cc member add pt --org DNS.PT >/dev/null
	cc contact add pt --name Nobody --email "$who" --phone '+351 21 234 5678' --key "$WORK/key.asc" >/dev/null
	cc digest send
	cc outbox list

	wait_bounced 2 # the notice of the new contact and the digest
	printf '%s\n' "$out"
	grep -q "^[0-9]\+ \+digest .*bounced .*unknown user" <<<"$out" ||
		{ pf_log; die "the bounced digest lacks Postfix's diagnostic (unknown user)"; }

	say "a third message (ping send) bounces: the contact is unreachable (bounces.limit 3)"
	cc ping send
	wait_bounced 3
	local rc=0
	cc ping status || rc=$?
	[ "$rc" = 4 ] || die "ping status exited $rc, want 4 (unreachable)"
	out=$(cc ping status --json 2>/dev/null) || true
	grep -q '"verdict": "unreachable"' <<<"$out" || die "ping status --json does not say unreachable"
	cc verify >/dev/null || die "verify after the bounces"
	grep -q "status=bounced" "$PF/maillog" || { pf_log; die "Postfix logged no bounce"; }
	grep -q "relay=ccdir, .*status=sent" "$PF/maillog" ||
		{ pf_log; die "the DSN did not go through the ccdir pipe"; }
	say "ok: Postfix's DSNs marked the messages bounced and the contact unreachable ($((SECONDS - start))s)"
}

main "$@"
