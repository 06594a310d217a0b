#!/usr/bin/env bash
# ccdir behind a real Postfix, configured from scripts/examples, by the
# pipe AND by LMTP: a signed command, a list post, refused mail and a
# bounce, with every reply going back out through Postfix.
#
# Runs a PRIVATE Postfix instance (its own config, queue and data
# directories under a temporary folder; smtpd on a free port of
# 127.0.0.1 only, inet_protocols = ipv4, no chroot), never the system's
# instance nor port 25, and removes it at the end. Its main.cf, master.cf
# and transport map are the examples' (postfix-main.cf, postfix-master.cf,
# postfix-transport-pipe.txt, postfix-transport-lmtp.txt), with the
# example domain and paths replaced, so `postfix check` and every mail
# below test them. Two directories (two ccdir homes) run at once:
#   pipe.ccdir.test  through pipe(8) to `ccdir process`;
#   lmtp.ccdir.test  through lmtp(8) to `ccdir serve --lmtp unix:...`.
# Their contacts have mailboxes on the instance (virtual(8) maildirs of
# mbox.ccdir.test), where the test decrypts what arrives with gpg.
# OpenDKIM (scripts/examples/opendkim.conf, KeyTable, SigningTable;
# checked with `opendkim -n`) runs as the instance's milter and must have
# signed the replies.
#
# For each directory:
# 1. a signed command (SHOW) from a contact: the encrypted, signed reply
#    comes back through Postfix into the contact's mailbox (gpg decrypts
#    it, VALIDSIG by the directory key, DKIM-Signature d= its domain);
# 2. a list post, signed and encrypted to the directory key: the copy for
#    the other member comes through Postfix (gpg decrypts it);
# 3. refused mail with a forged sender (a mailbox of the instance):
#    unsigned mail to the command address, mail to an unknown room
#    (alerts+ROOM@) and to an address of the domain that is not ccdir's
#    (refused by smtpd at RCPT, from relay_recipient_maps). Postfix must
#    make NO bounce: the queue empty (postqueue -p), no non-delivery
#    notification in the maillog, the forged sender's mailbox empty;
#    ccdir logged each (inbound_log rows), and under LMTP answered 250
#    ("refused, not bounced"), never a 5xx;
# 4. a real DSN made by Postfix marks ccdir's message bounced: a digest
#    to an unknown local user of the instance's own domain; local(8)
#    bounces it; bounce(8) mails the DSN to the tagged bounce address
#    (ccdir-bounces+TAG@, routed by recipient_delimiter = +); the outbox
#    message becomes `bounced` with Postfix's diagnostic. Through the
#    pipe, a third bounce (ping send) makes the contact unreachable.
# It FAILS when any of this does not happen in TIMEOUT seconds, and skips
# only when it cannot run at all (not root).
#
# Installs postfix and opendkim from Debian packages when they are
# missing, with the debconf answer "No configuration" (nothing of the
# system's is set up or started). pipe(8) refuses user=root, so the ccdir
# homes belong to an unprivileged user, $PIPE_USER (default ccdirtest),
# made when missing.
#
# Built for reuse: the pf_* functions start, feed and stop an instance;
# pf_write_config is the one writer of its main.cf, master.cf and
# transport map; pf_service adds a master.cf line.
#
# Environment: PIPE_USER, TIMEOUT (seconds for each wait, default 60),
# KEEP=1 keeps the temporary folder.
set -euo pipefail
cd "$(dirname "$0")/.."
repo=$(pwd)
examples=$repo/scripts/examples

PIPE_USER=${PIPE_USER:-ccdirtest}
TIMEOUT=${TIMEOUT:-60}
MAIL_DOMAIN=mx.ccdir.test    # the instance's local domain (mydestination): unknown users bounce
MBOX_DOMAIN=mbox.ccdir.test  # the contacts' mailboxes (virtual(8) maildirs)
PIPE_DOMAIN=pipe.ccdir.test  # a directory delivered through the pipe
LMTP_DOMAIN=lmtp.ccdir.test  # a directory delivered by LMTP

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

# need_packages installs postfix and opendkim from Debian packages when
# missing.
need_packages() {
	local need=()
	{ command -v postfix >/dev/null && [ -x /usr/lib/postfix/sbin/master ]; } || need+=(postfix)
	command -v opendkim >/dev/null || need+=(opendkim)
	command -v opendkim-genkey >/dev/null || need+=(opendkim-tools)
	((${#need[@]})) || return 0
	command -v apt-get >/dev/null || die "${need[*]} missing and there is no apt-get to install them"
	say "installing ${need[*]} (Debian packages; postfix: \"No configuration\")"
	echo "postfix postfix/main_mailer_type select No configuration" | debconf-set-selections
	export DEBIAN_FRONTEND=noninteractive
	timeout 300 apt-get install -y -q "${need[@]}" >/dev/null ||
		{ timeout 120 apt-get update -q >/dev/null && timeout 300 apt-get install -y -q "${need[@]}" >/dev/null; } ||
		die "apt-get install ${need[*]} failed"
	# The package may start its own daemon: this test runs its own.
	timeout 20 service opendkim stop >/dev/null 2>&1 || true
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

# pf_transport LINE... appends transport map lines (ADDRESS-OR-DOMAIN
# NEXTHOP, or whole example files' lines).
PF_TRANSPORT=()
pf_transport() { PF_TRANSPORT+=("$@"); }

# pf_write_config writes main.cf, master.cf and the transport map of the
# instance in $PF (PF_PORT: smtpd's port; PF_MAIN_EXTRA: more main.cf
# lines, e.g. the example's: it sets transport_maps, naming
# texthash:$PF/etc/transport, and recipient_delimiter).
pf_write_config() {
	mkdir -p "$PF/etc" "$PF/queue" "$PF/data" "$PF/mail"
	chown postfix "$PF/data"
	chown "$PIPE_USER" "$PF/mail"
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
relayhost =
# Accept any local part at RCPT, so that local(8) makes the bounce.
local_recipient_maps =
alias_maps =
alias_database =
biff = no
smtputf8_enable = no
default_destination_concurrency_limit = 2
# The contacts' mailboxes: maildirs under $PF/mail.
virtual_mailbox_domains = $MBOX_DOMAIN
virtual_mailbox_base = $PF/mail
virtual_mailbox_maps = texthash:$PF/etc/vmailbox
virtual_minimum_uid = 100
virtual_uid_maps = static:$(id -u "$PIPE_USER")
virtual_gid_maps = static:$(id -g "$PIPE_USER")
# Nothing leaves the machine: unknown domains fail at once.
default_transport = error:this private test instance delivers nowhere else
# Retry deferred mail soon (a test waits for it).
queue_run_delay = 5s
minimal_backoff_time = 5s
maximal_backoff_time = 10s
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
virtual   unix  - n n -  - virtual
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
	pf_cmd postfix -c "$PF/etc" check || die "postfix check of the private instance (the examples' main.cf, master.cf)"
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

# pf_send FROM TO FILE submits FILE to the instance's smtpd, as a remote
# MTA would (python3's smtplib; deps.sh installs python3). Exit 3: the
# recipient was refused in the dialogue (its reply on stdout).
pf_send() {
	timeout 30 python3 - "$PF_PORT" "$@" <<'EOF'
import smtplib, sys
port, frm, to, path = sys.argv[1:]
with smtplib.SMTP("127.0.0.1", int(port), timeout=20) as s:
    try:
        s.sendmail(frm, [to], open(path, "rb").read())
    except smtplib.SMTPRecipientsRefused as e:
        for rcpt, (code, text) in e.recipients.items():
            print(rcpt, code, text.decode())
        sys.exit(3)
EOF
}

cleanup() {
	local rc=$?
	[ -n "${SERVE_PID:-}" ] && kill "$SERVE_PID" 2>/dev/null && wait "$SERVE_PID" 2>/dev/null
	[ -n "${DKIM_PID:-}" ] && kill "$DKIM_PID" 2>/dev/null
	[ -n "${WORK:-}" ] && gpgconf --homedir "$WORK/gnupg" --kill all 2>/dev/null
	pf_stop
	if [ "$rc" != 0 ] && [ -n "${WORK:-}" ]; then
		for f in "$WORK"/serve.log "$WORK"/opendkim.log; do
			[ -s "$f" ] && { echo "--- $f" >&2; tail -n 30 "$f" >&2; }
		done
	fi
	if [ -n "${KEEP:-}" ]; then
		say "kept $WORK"
	else
		rm -rf "$WORK"
	fi
	exit "$rc"
}

# as_pipe_user runs a command as $PIPE_USER (who owns the ccdir homes).
as_pipe_user() { runuser -u "$PIPE_USER" -- "$@"; }

# cc HOME ARGS... runs ccdir on a test home as $PIPE_USER.
cc() {
	local home=$1
	shift
	as_pipe_user "$WORK/bin/ccdir" --home "$home" "$@"
}

# gg runs the contacts' gpg.
gg() { timeout 60 gpg --homedir "$WORK/gnupg" --batch --yes --quiet --trust-model always "$@"; }

# waitfor WHAT COMMAND... runs COMMAND every second until it succeeds,
# at most $TIMEOUT seconds.
waitfor() {
	local what=$1 deadline=$((SECONDS + TIMEOUT))
	shift
	say "waiting (at most ${TIMEOUT}s) for $what"
	until "$@"; do
		if [ "$SECONDS" -ge "$deadline" ]; then
			pf_queue >&2
			pf_log
			die "no $what after ${TIMEOUT}s"
		fi
		sleep 1
	done
}

# decrypt_to MAIL OUT decrypts the armored PGP/MIME part of MAIL with the
# contacts' gpg into OUT, its status lines into OUT.status.
decrypt_to() {
	sed -n '/^-----BEGIN PGP MESSAGE-----/,/^-----END PGP MESSAGE-----/p' "$1" >"$2.asc"
	gg --status-fd 1 --decrypt --output "$2" "$2.asc" >"$2.status" 2>/dev/null
}

# found_mail BOX REGEX: the first mail of maildir BOX whose raw text
# matches REGEX (grep -E) is left in $mail.
found_mail() {
	mail=$(grep -lE -- "$2" "$PF/mail/$1"/new/* 2>/dev/null | head -n 1)
	[ -n "$mail" ]
}

# found_decrypted BOX REGEX: the first mail of BOX that decrypts to text
# matching REGEX is left in $mail, its decryption in $mail_dec.
found_decrypted() {
	local f
	for f in "$PF/mail/$1"/new/*; do
		[ -f "$f" ] || continue
		grep -q -- '-----BEGIN PGP MESSAGE-----' "$f" || continue
		decrypt_to "$f" "$WORK/dec" || continue
		if grep -qE -- "$2" "$WORK/dec"; then
			mail=$f mail_dec=$WORK/dec
			return 0
		fi
	done
	return 1
}

# inbound_rows HOME WHERE: the number of inbound_log rows matching the
# SQL condition WHERE.
inbound_rows() {
	python3 - "$1/directory.db" "$2" <<'EOF'
import sqlite3, sys
db = sqlite3.connect("file:" + sys.argv[1] + "?mode=ro", uri=True, timeout=10)
print(db.execute("SELECT count(*) FROM inbound_log WHERE " + sys.argv[2]).fetchone()[0])
EOF
}

# rows_at_least N HOME WHERE
rows_at_least() { [ "$(inbound_rows "$2" "$3")" -ge "$1" ]; }

# queue_empty: the instance's queue holds nothing.
queue_empty() { pf_queue | grep -q 'Mail queue is empty'; }

# bounced_at_least N HOME: N outbox messages of HOME are bounced; their
# list is left in $out.
bounced_at_least() {
	out=$(cc "$2" outbox list --status bounced 2>/dev/null || true)
	[ "$(grep -c " bounced " <<<"$out" || true)" -ge "$1" ]
}

# sub FILE: an example file with the example's names replaced: domain
# $D, home $H, the binary and the pipe user.
sub() {
	sed -e "s#tldops\.example#$D#g" -e "s#/usr/local/bin/ccdir#$WORK/bin/ccdir#g" \
		-e "s#/var/lib/ccdir#$H#g" -e "s#user=ccdir #user=$PIPE_USER #g" \
		-e "s#unix:/run/ccdir/lmtp\.sock#unix:$WORK/run/lmtp.sock#g" "$1"
}

# message FILE FROM TO ID BODYFILE writes a mail.
message() {
	{
		printf 'From: %s\r\nTo: %s\r\nSubject: test\r\nMessage-ID: <%s@ccdir.test>\r\nDate: %s\r\nMIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n' \
			"$2" "$3" "$4" "$(date -R)"
		sed 's/$/\r/' "$5"
	} >"$1"
}

# setup_home NAME DOMAIN: a directory at DOMAIN in $WORK/ccdir/NAME, with
# ana (pt) and piet (nl) as contacts; its key imported into the contacts'
# gpg. The home's config.yaml sends through the instance (pipe(8) passes
# no environment).
setup_home() {
	local h=$WORK/ccdir/$1 d=$2
	cc "$h" init --name "Postfix test $1" --address "ccdir@$d" --list-address "alerts@$d" --no-passphrase >/dev/null
	printf 'delivery:\n    url: "smtp://127.0.0.1:%s?starttls=off"\n' "$PF_PORT" >>"$h/config.yaml"
	cc "$h" member add pt --org DNS.PT >/dev/null
	cc "$h" member add nl --org SIDN >/dev/null
	cc "$h" contact add pt --name 'Ana Silva' --email "ana@$MBOX_DOMAIN" --phone '+351 21 234 5678' --key "$WORK/ana.asc" >/dev/null
	cc "$h" contact add nl --name 'Piet de Vries' --email "piet@$MBOX_DOMAIN" --phone '+31 10 123 4567' --key "$WORK/piet.asc" >/dev/null
	cc "$h" pubkey >"$WORK/$1-dir.asc"
	gg --import "$WORK/$1-dir.asc" 2>/dev/null
	gg --with-colons --fingerprint "ccdir@$d" | awk -F: '/^fpr:/ {print $10; exit}' >"$WORK/$1-dir.fpr"
}

# scenario NAME DOMAIN: the command, the list post and the refused mail
# for the directory at DOMAIN (see the top of this file).
scenario() {
	local name=$1 d=$2 h=$WORK/ccdir/$1 dirfpr
	dirfpr=$(cat "$WORK/$name-dir.fpr")

	say "$name: a signed SHOW from ana to ccdir@$d"
	printf 'DIRECTORY ccdir@%s\nSHOW pt\n' "$d" >"$WORK/$name-show.txt"
	gg --local-user "ana@$MBOX_DOMAIN" --clearsign --output "$WORK/$name-show.asc" "$WORK/$name-show.txt"
	message "$WORK/$name-show.eml" "ana@$MBOX_DOMAIN" "ccdir@$d" "show-$name" "$WORK/$name-show.asc"
	pf_send "ana@$MBOX_DOMAIN" "ccdir@$d" "$WORK/$name-show.eml" || die "$name: the command mail was refused by smtpd"
	waitfor "$name: the reply in ana's mailbox" found_mail ana "^In-Reply-To: <show-$name@ccdir\.test>"
	decrypt_to "$mail" "$WORK/$name-reply" || die "$name: gpg cannot decrypt the reply $mail"
	grep -q "^\[GNUPG:\] VALIDSIG $dirfpr " "$WORK/$name-reply.status" || die "$name: the reply is not signed by the directory key $dirfpr"
	grep -q 'SHOW pt' "$WORK/$name-reply" && grep -q 'Ana Silva' "$WORK/$name-reply" || die "$name: the reply does not answer SHOW pt"
	grep -qE "^DKIM-Signature:.* d=$d;" "$mail" || grep -A3 '^DKIM-Signature:' "$mail" | grep -q "d=$d;" ||
		die "$name: the reply was not DKIM-signed for $d by OpenDKIM"
	say "$name: ok: the reply came back through Postfix, decrypted, VALIDSIG, DKIM-signed"

	say "$name: a list post from ana to alerts@$d"
	printf 'DIRECTORY alerts@%s\nTLP:GREEN\n\nResolvers of .pt answer with forged addresses (%s).\n' "$d" "$name" >"$WORK/$name-post.txt"
	gg --local-user "ana@$MBOX_DOMAIN" --sign --encrypt --armor -r "$dirfpr" --output "$WORK/$name-post.asc" "$WORK/$name-post.txt"
	message "$WORK/$name-post.eml" "ana@$MBOX_DOMAIN" "alerts@$d" "post-$name" "$WORK/$name-post.asc"
	pf_send "ana@$MBOX_DOMAIN" "alerts@$d" "$WORK/$name-post.eml" || die "$name: the post was refused by smtpd"
	waitfor "$name: the post's copy in piet's mailbox" found_decrypted piet "forged addresses \($name\)"
	# The copy is signed once for all (a multipart/signed inside the
	# encryption: process_list.txtar checks that signature with gpg).
	grep -q '^\[GNUPG:\] DECRYPTION_OKAY' "$WORK/dec.status" && grep -qi 'application/pgp-signature' "$WORK/dec" ||
		die "$name: the list copy is not a signed message encrypted to piet"
	say "$name: ok: the list copy came through Postfix and decrypts for piet"

	say "$name: refused mail from a forged sender (victim@$MBOX_DOMAIN)"
	printf 'SHOW pt\n' >"$WORK/$name-unsigned.txt"
	message "$WORK/$name-unsigned.eml" "victim@$MBOX_DOMAIN" "ccdir@$d" "unsigned-$name" "$WORK/$name-unsigned.txt"
	pf_send "victim@$MBOX_DOMAIN" "ccdir@$d" "$WORK/$name-unsigned.eml" || die "$name: smtpd refused mail for ccdir@$d"
	message "$WORK/$name-room.eml" "victim@$MBOX_DOMAIN" "alerts+noroom@$d" "room-$name" "$WORK/$name-unsigned.txt"
	pf_send "victim@$MBOX_DOMAIN" "alerts+noroom@$d" "$WORK/$name-room.eml" ||
		die "$name: smtpd refused alerts+noroom@$d (recipient_delimiter = + should find alerts@$d)"
	local rc=0 reply
	reply=$(pf_send "victim@$MBOX_DOMAIN" "postmaster@$d" "$WORK/$name-unsigned.eml") || rc=$?
	[ "$rc" = 3 ] && grep -q ' 550 ' <<<"$reply" ||
		die "$name: postmaster@$d (not in the transport map) was not refused at RCPT (exit $rc: $reply)"
	waitfor "$name: the unsigned mail in the inbound log" rows_at_least 1 "$h" \
		"verdict = 'refused' AND reason = 'unsigned' AND sender = 'victim@$MBOX_DOMAIN' AND recipient = 'ccdir@$d'"
	waitfor "$name: the mail to alerts+noroom in the inbound log" rows_at_least 1 "$h" \
		"verdict = 'ignored' AND sender = 'victim@$MBOX_DOMAIN' AND recipient = 'alerts+noroom@$d'"
	waitfor "$name: an empty queue" queue_empty
	pf_queue
	if grep -q 'sender non-delivery notification' "$PF/maillog"; then
		pf_log
		die "$name: Postfix made a bounce (non-delivery notification) for refused mail"
	fi
	if ls "$PF/mail/victim/new/"* >/dev/null 2>&1; then
		head -n 30 "$PF/mail/victim/new/"* >&2
		die "$name: the forged sender got mail (a DSN)"
	fi
	grep -E "to=<ccdir@$d>.*status=" "$PF/maillog" | grep -v 'status=sent' && die "$name: a delivery to ccdir was not status=sent"
	if [ "$name" = lmtp ]; then
		grep -q "to=<ccdir@$d>.*status=sent (250 2\.0\.0 <ccdir@$d> refused, not bounced: " "$PF/maillog" ||
			{ pf_log; die "lmtp: no 250 'refused, not bounced' in the maillog"; }
		grep 'lmtp\.sock' "$PF/maillog" | grep -E 'status=(bounced|deferred)' && die "lmtp: a 5xx or 4xx from serve in the maillog"
	fi
	say "$name: ok: refused mail logged by ccdir, no bounce by Postfix (queue empty, no DSN)"
}

# bounce NAME DOMAIN: a digest to an unknown user of the instance bounces;
# the DSN reaches ccdir at the tagged bounce address and marks it.
bounce() {
	local name=$1 d=$2 h=$WORK/ccdir/$1 who="no-such-user@$MAIL_DOMAIN"
	say "$name: ccdir sends a digest to the unknown user $who through Postfix"
	cc "$h" member add be --org Nobody >/dev/null
	cc "$h" contact add be --name Nobody --email "$who" --phone '+351 21 234 5679' --key "$WORK/nobody.asc" >/dev/null
	cc "$h" digest send
	waitfor "$name: the digest marked bounced" eval 'bounced_at_least 1 "$h" && grep -q "^[0-9]\+ \+digest .*bounced .*unknown user" <<<"$out"'
	printf '%s\n' "$out"
	grep -q "to=<ccdir-bounces+.*@$d>.*status=sent" "$PF/maillog" ||
		{ pf_log; die "$name: the DSN did not reach ccdir at the tagged bounce address"; }
}

main() {
	need_root "$@"
	need_packages
	need_pipe_user
	local start=$SECONDS

	WORK=$(mktemp -d /tmp/ccdir-postfix.XXXXXX)
	trap cleanup EXIT
	trap 'exit 130' INT TERM
	chmod 755 "$WORK"
	PF=$WORK/postfix
	PF_PORT=$(free_port)
	DKIM_PORT=$(free_port)

	say "building ccdir"
	mkdir -p "$WORK/bin"
	go build -o "$WORK/bin/ccdir" ./cmd/ccdir
	chmod 755 "$WORK/bin/ccdir"

	say "contacts' keys (gpg)"
	mkdir -p "$WORK/ccdir" "$WORK/gnupg"
	chown "$PIPE_USER" "$WORK/ccdir"
	chmod 700 "$WORK/gnupg"
	local who
	for who in "Ana Silva <ana@$MBOX_DOMAIN>" "Piet de Vries <piet@$MBOX_DOMAIN>" "Nobody <no-such-user@$MAIL_DOMAIN>"; do
		gg --passphrase '' --quick-gen-key "$who" future-default default 1y 2>/dev/null
	done
	gg --armor --export "ana@$MBOX_DOMAIN" >"$WORK/ana.asc"
	gg --armor --export "piet@$MBOX_DOMAIN" >"$WORK/piet.asc"
	gg --armor --export "no-such-user@$MAIL_DOMAIN" >"$WORK/nobody.asc"
	chmod 644 "$WORK"/*.asc

	say "ccdir homes (owner $PIPE_USER): pipe at $PIPE_DOMAIN, lmtp at $LMTP_DOMAIN"
	setup_home pipe "$PIPE_DOMAIN"
	setup_home lmtp "$LMTP_DOMAIN"

	say "OpenDKIM from the examples (opendkim.conf, KeyTable, SigningTable)"
	local k=$WORK/dkim
	mkdir -p "$k/keys"
	timeout 60 opendkim-genkey -b 2048 -D "$k/keys" -d "$PIPE_DOMAIN" -s ccdir
	chown -R opendkim "$k"
	chmod 700 "$k/keys"
	chmod 600 "$k/keys/ccdir.private"
	{
		D=$PIPE_DOMAIN sub_dkim "$examples/opendkim-KeyTable"
		D=$LMTP_DOMAIN sub_dkim "$examples/opendkim-KeyTable"
	} >"$k/KeyTable"
	{
		D=$PIPE_DOMAIN sub_dkim "$examples/opendkim-SigningTable"
		D=$LMTP_DOMAIN sub_dkim "$examples/opendkim-SigningTable"
	} >"$k/SigningTable"
	sed -e "s#^Socket .*#Socket          inet:$DKIM_PORT@127.0.0.1#" \
		-e "s#^PidFile .*#PidFile         $k/opendkim.pid#" \
		-e "s#^Syslog .*#Syslog          no#" \
		-e "s#file:/etc/opendkim/#file:$k/#" "$examples/opendkim.conf" >"$k/opendkim.conf"
	# The key lies under /tmp, writable by all: OpenDKIM would refuse it
	# as unsafe (in /etc/opendkim/keys it is not).
	echo "RequireSafeKeys false" >>"$k/opendkim.conf"
	grep -q "^Socket .*$DKIM_PORT" "$k/opendkim.conf" || die "opendkim.conf example: no Socket line to point at the test's port"
	timeout 30 opendkim -n -x "$k/opendkim.conf" || die "opendkim -n: the example opendkim.conf does not parse"
	opendkim -f -x "$k/opendkim.conf" >"$WORK/opendkim.log" 2>&1 &
	DKIM_PID=$!

	say "private Postfix on 127.0.0.1:$PF_PORT in $PF, from the examples"
	# main.cf: the example's additions, transport_maps and
	# relay_recipient_maps pointing at the test's map, both directories'
	# domains relayed, the milter at the test's OpenDKIM.
	PF_MAIN_EXTRA=$(sed -e "s#hash:/etc/postfix/ccdir_transport#texthash:$PF/etc/transport#g" \
		-e "s#^relay_domains = .*#relay_domains = $PIPE_DOMAIN, $LMTP_DOMAIN#" \
		-e "s#inet:127\.0\.0\.1:8891#inet:127.0.0.1:$DKIM_PORT#" "$examples/postfix-main.cf")
	grep -q "texthash:$PF/etc/transport" <<<"$PF_MAIN_EXTRA" || die "postfix-main.cf example: no transport map to point at"
	# master.cf: the example's two services (pipe and lmtp).
	local line
	while IFS= read -r line; do
		pf_service "$line"
	done < <(D=$PIPE_DOMAIN H=$WORK/ccdir/pipe sub "$examples/postfix-master.cf" | grep -v '^#')
	# transport map: the pipe example for one domain, the LMTP one for
	# the other.
	while IFS= read -r line; do pf_transport "$line"; done < <(D=$PIPE_DOMAIN H=$WORK/ccdir/pipe sub "$examples/postfix-transport-pipe.txt")
	while IFS= read -r line; do pf_transport "$line"; done < <(D=$LMTP_DOMAIN H=$WORK/ccdir/lmtp sub "$examples/postfix-transport-lmtp.txt")
	pf_write_config
	local u
	for u in ana piet victim; do echo "$u@$MBOX_DOMAIN $u/"; done >"$PF/etc/vmailbox"
	pf_start

	say "ccdir serve --lmtp unix:$WORK/run/lmtp.sock (for $LMTP_DOMAIN)"
	# The socket's directory is setgid postfix, so the socket (0660) is
	# of group postfix: Postfix's lmtp client (user postfix) connects.
	# (In production: usermod -aG ccdir postfix, ccdir-serve.service.)
	install -d -o "$PIPE_USER" -g postfix -m 2750 "$WORK/run"
	# (setpriv execs ccdir: its pid is serve's, for the kill at the end;
	# runuser would stay in between and pass a SIGTERM to this script.)
	setpriv --reuid "$PIPE_USER" --regid "$(id -g "$PIPE_USER")" --init-groups \
		env CCDIR_HOME="$WORK/ccdir/lmtp" "$WORK/bin/ccdir" serve --lmtp "unix:$WORK/run/lmtp.sock" >"$WORK/serve.log" 2>&1 &
	SERVE_PID=$!
	waitfor "the LMTP socket" test -S "$WORK/run/lmtp.sock"

	# The notices of the contacts added, queued by the pipe home, go
	# out now; the lmtp home's, by serve.
	cc "$WORK/ccdir/pipe" outbox flush >/dev/null

	scenario pipe "$PIPE_DOMAIN"
	scenario lmtp "$LMTP_DOMAIN"
	grep -q 'refused mail from "victim@' "$WORK/serve.log" || die "serve did not log the refused mail"

	bounce pipe "$PIPE_DOMAIN"
	bounce lmtp "$LMTP_DOMAIN"

	say "pipe: a third message (ping send) bounces: the contact is unreachable (bounces.limit 3)"
	local h=$WORK/ccdir/pipe rc=0
	cc "$h" ping send
	waitfor "three bounces" eval 'bounced_at_least 3 "$h"'
	cc "$h" ping status || rc=$?
	[ "$rc" = 4 ] || die "ping status exited $rc, want 4 (unreachable)"
	out=$(cc "$h" ping status --json 2>/dev/null) || true
	grep -q '"verdict": "unreachable"' <<<"$out" || die "ping status --json does not say unreachable"
	cc "$h" verify >/dev/null || die "verify after the bounces (pipe)"
	cc "$WORK/ccdir/lmtp" verify >/dev/null || die "verify after the bounces (lmtp)"
	grep -q "status=bounced" "$PF/maillog" || { pf_log; die "Postfix logged no bounce"; }
	grep -q "relay=ccdir, .*status=sent" "$PF/maillog" || { pf_log; die "nothing went through the ccdir pipe"; }
	grep -q "relay=$WORK/run/lmtp.sock.*status=sent\|relay=.*lmtp.sock.*status=sent" "$PF/maillog" ||
		{ pf_log; die "nothing went through LMTP"; }
	if ls "$PF/mail/victim/new/"* >/dev/null 2>&1; then die "the forged sender got mail"; fi
	say "ok: pipe and LMTP: commands answered, list relayed, refusals unbounced, DSNs matched ($((SECONDS - start))s)"
}

# sub_dkim FILE: an OpenDKIM example file for domain $D, keys in $k.
sub_dkim() { grep -v '^#' "$1" | sed -e "s#tldops\.example#$D#g" -e "s#/etc/opendkim/keys/#$k/keys/#g"; }

main "$@"
